package gitsource

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
)

// Environment variables holding credentials, so they never appear in argv.
const (
	EnvToken    = "STOKER_GIT_TOKEN"
	EnvPassword = "STOKER_GIT_PASSWORD"
	EnvUsername = "STOKER_GIT_USERNAME"
)

// AuthOptions says where credentials come from. Secrets are only ever
// read from files or the environment; the flags carry paths and the user
// name, never a secret.
type AuthOptions struct {
	// SSHKeyFile is a private key (OpenSSH or PEM, unencrypted) for ssh://
	// and scp-like URLs.
	SSHKeyFile string
	// KnownHostsFile pins server host keys; empty means the user's
	// ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. Checking is strict
	// unless InsecureIgnoreHostKey is set.
	KnownHostsFile string
	// InsecureIgnoreHostKey accepts any SSH host key. For tests and
	// first-contact demos only.
	InsecureIgnoreHostKey bool
	// Username is the HTTP basic user (or the SSH user when the URL names
	// none); STOKER_GIT_USERNAME when empty.
	Username string
	// PasswordFile holds the HTTP basic password; STOKER_GIT_PASSWORD when
	// empty.
	PasswordFile string
	// TokenFile holds an HTTP token; STOKER_GIT_TOKEN when empty. Alone it
	// is sent as "Authorization: Bearer"; with a Username it is the basic
	// auth password (what GitHub and GitLab expect).
	TokenFile string

	// LookupEnv replaces os.LookupEnv (tests).
	LookupEnv func(string) (string, bool) `json:"-"`
}

// BindFlags registers the --git-* credential flags on fs into o, so the
// hub, the agent and the status commands share one set of flags.
func (o *AuthOptions) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.SSHKeyFile, "git-ssh-key-file", o.SSHKeyFile, "SSH private key file for ssh:// Git URLs")
	fs.StringVar(&o.KnownHostsFile, "git-known-hosts-file", o.KnownHostsFile, "known_hosts file pinning the Git server's SSH host key (default ~/.ssh/known_hosts)")
	fs.BoolVar(&o.InsecureIgnoreHostKey, "git-insecure-skip-host-key", o.InsecureIgnoreHostKey, "accept any SSH host key (insecure; tests only)")
	fs.StringVar(&o.Username, "git-username", o.Username, "HTTP(S) user name (or $"+EnvUsername+")")
	fs.StringVar(&o.PasswordFile, "git-password-file", o.PasswordFile, "file holding the HTTP(S) password (or $"+EnvPassword+")")
	fs.StringVar(&o.TokenFile, "git-token-file", o.TokenFile, "file holding an HTTP(S) token, sent as bearer or as the password with --git-username (or $"+EnvToken+")")
}

// secrets returns the loaded secret values, for redaction.
type loadedAuth struct {
	method  transport.AuthMethod
	secrets []string
}

func (o AuthOptions) lookup(name string) string {
	look := o.LookupEnv
	if look == nil {
		look = os.LookupEnv
	}
	v, _ := look(name)
	return v
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// Load builds the go-git auth method for rawURL (nil for file:// and
// git://, which carry no credentials). User info embedded in an HTTP URL is
// used as basic auth when no other credential is configured.
func (o AuthOptions) Load(rawURL string) (transport.AuthMethod, error) {
	a, err := o.load(rawURL, 0)
	if err != nil {
		return nil, err
	}
	return a.method, nil
}

func (o AuthOptions) load(rawURL string, timeout time.Duration) (loadedAuth, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return loadedAuth{}, fmt.Errorf("parse git url %s: %w", Redact(rawURL), err)
	}
	switch ep.Protocol {
	case "file", "git":
		return loadedAuth{}, nil
	case "ssh":
		return o.loadSSH(ep, timeout)
	case "http", "https":
		return o.loadHTTP(rawURL)
	}
	return loadedAuth{}, fmt.Errorf("git url %s: unsupported protocol %q", Redact(rawURL), ep.Protocol)
}

func (o AuthOptions) loadHTTP(rawURL string) (loadedAuth, error) {
	user := o.Username
	if user == "" {
		user = o.lookup(EnvUsername)
	}
	token := o.lookup(EnvToken)
	if o.TokenFile != "" {
		t, err := readSecret(o.TokenFile)
		if err != nil {
			return loadedAuth{}, fmt.Errorf("load git token from --git-token-file: %w", err)
		}
		token = t
	}
	password := o.lookup(EnvPassword)
	if o.PasswordFile != "" {
		p, err := readSecret(o.PasswordFile)
		if err != nil {
			return loadedAuth{}, fmt.Errorf("load git password from --git-password-file: %w", err)
		}
		password = p
	}
	switch {
	case token != "" && user != "":
		return loadedAuth{&githttp.BasicAuth{Username: user, Password: token}, []string{token}}, nil
	case token != "":
		return loadedAuth{&githttp.TokenAuth{Token: token}, []string{token}}, nil
	case password != "":
		return loadedAuth{&githttp.BasicAuth{Username: user, Password: password}, []string{password}}, nil
	}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		p, _ := u.User.Password()
		// The password, or a bare token given as the user name.
		return loadedAuth{&githttp.BasicAuth{Username: u.User.Username(), Password: p}, urlSecrets(rawURL)}, nil
	}
	return loadedAuth{}, nil
}

func (o AuthOptions) loadSSH(ep *transport.Endpoint, timeout time.Duration) (loadedAuth, error) {
	user := ep.User
	if user == "" {
		user = o.Username
	}
	if user == "" {
		user = "git"
	}
	if o.SSHKeyFile == "" {
		return loadedAuth{}, fmt.Errorf("ssh git url needs --git-ssh-key-file")
	}
	pem, err := os.ReadFile(o.SSHKeyFile)
	if err != nil {
		return loadedAuth{}, fmt.Errorf("load ssh key from --git-ssh-key-file: %w", err)
	}
	keys, err := gitssh.NewPublicKeys(user, pem, "")
	if err != nil {
		return loadedAuth{}, fmt.Errorf("parse ssh key %s: %w", o.SSHKeyFile, err)
	}
	if o.InsecureIgnoreHostKey {
		keys.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	} else {
		var files []string
		if o.KnownHostsFile != "" {
			files = []string{o.KnownHostsFile}
		}
		cb, err := gitssh.NewKnownHostsCallback(files...)
		if err != nil {
			return loadedAuth{}, fmt.Errorf("load ssh known_hosts: %w", err)
		}
		keys.HostKeyCallback = cb
	}
	return loadedAuth{method: &sshAuth{PublicKeys: keys, timeout: timeout}}, nil
}

// sshAuth bounds the SSH dial and handshake, which go-git does not tie to
// the operation's context.
type sshAuth struct {
	*gitssh.PublicKeys
	timeout time.Duration
}

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	c, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	if a.timeout > 0 {
		c.Timeout = a.timeout
	}
	return c, nil
}
