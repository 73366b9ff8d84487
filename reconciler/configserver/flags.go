package configserver

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// BindFlags binds `stoker hub`'s --config-* flags into o. The server is on
// when --config-listen is set.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Listen, "config-listen", "", "address of the first-boot config server /config/<pool> (its own listener; e.g. :22623); empty: off")
	fs.StringVar(&o.TLSCertFile, "config-tls-cert", "", "certificate file of the config server")
	fs.StringVar(&o.TLSKeyFile, "config-tls-key", "", "private key file of the config server")
	fs.BoolVar(&o.InsecureHTTP, "config-insecure-http", false, "serve the config server over plain HTTP (tokens and Git credentials in the clear: a trusted network only)")
	fs.StringVar(&o.Tokens.Dir, "config-token-dir", "", "directory of per-pool bearer token files: <dir>/<pool>, one token per line (several during a rotation), re-read on every request (a mounted Secret works)")
	fs.Float64Var(&o.Rate, "config-rate", DefaultRate, "config requests per second allowed per client address")
	fs.IntVar(&o.Burst, "config-burst", DefaultBurst, "config requests a client address may make at once")
	fs.StringVar(&o.Join.RepoURL, "config-agent-repo", "", "the joining agent's --repo, as machines reach it (default: the hub's --repo)")
	fs.StringVar(&o.Join.StatusRepoURL, "config-agent-status-repo", "", "the joining agent's --status-repo (default: the hub's --status-repo)")
	fs.StringVar(&o.Join.ReportsRepoURL, "config-agent-reports-repo", "", "the joining agent's --reports-repo (default: the hub's --reports-repo)")
	fs.StringVar(&o.Join.GitUsername, "config-agent-git-username", "", "the joining agent's --git-username")
	fs.Var(credentialsValue{&o.Join.Credentials}, "config-agent-credential", "FLAG=FILE: a read-only Git credential on the hub's disk handed to joining agents as --FLAG (git-token-file, git-password-file, git-ssh-key-file, git-known-hosts-file); repeatable")
	fs.StringArrayVar(&o.Join.TrustHubKeys, "config-agent-trust-hub-key", nil, "file with a hub public key joining agents trust (their --trust-hub-key); repeatable")
	fs.StringVar(&o.Join.Binary, "config-agent-binary", defaultBinary, "the stoker binary on joining machines (the image provides it)")
	fs.StringVar(&o.Join.StateDir, "config-agent-state-dir", "", "the joining agent's --state-dir (default /var/lib/stoker)")
	fs.StringArrayVar(&o.Join.ExtraArgs, "config-agent-arg", nil, "one more flag for joining agents (e.g. --drain=kube); repeatable")
}

type credentialsValue struct{ to *[]Credential }

func (v credentialsValue) String() string {
	if v.to == nil {
		return ""
	}
	parts := make([]string, 0, len(*v.to))
	for _, c := range *v.to {
		parts = append(parts, c.Flag+"="+c.HubFile)
	}
	return strings.Join(parts, ",")
}

func (v credentialsValue) Set(s string) error {
	flag, file, ok := strings.Cut(s, "=")
	if !ok || !credentialFlags[flag] || file == "" {
		return fmt.Errorf("%q is not FLAG=FILE with FLAG one of git-token-file, git-password-file, git-ssh-key-file, git-known-hosts-file", s)
	}
	*v.to = append(*v.to, Credential{Flag: flag, HubFile: file})
	return nil
}

func (v credentialsValue) Type() string { return "FLAG=FILE" }
