package gitserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// SSHDPath returns the sshd binary, or "" when openssh-server is not
// installed.
func SSHDPath() string {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// StartSSH serves the bare repositories under root with sshd on
// 127.0.0.1 as the current user. Logins need the generated client key
// (ClientKeyFile) and run `git-shell -c "$SSH_ORIGINAL_COMMAND"`, so only
// git-upload-pack and git-receive-pack work; repositories are addressed by
// absolute path. KnownHostsFile pins the generated host key.
func StartSSH(root string) (*Server, error) {
	sshd := SSHDPath()
	if sshd == "" {
		return nil, fmt.Errorf("start sshd: sshd not installed")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	gitShell, err := exec.LookPath("git-shell")
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	scratch, err := os.MkdirTemp(filepath.Dir(root), "gitserver-ssh-")
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(scratch)
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	if err := os.Chmod(scratch, 0o700); err != nil {
		return fail(err)
	}
	hostKey := filepath.Join(scratch, "host_ed25519")
	clientKey := filepath.Join(scratch, "client_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gitserver", "-f", k).CombinedOutput(); err != nil {
			return fail(fmt.Errorf("ssh-keygen: %w: %s", err, out))
		}
	}
	clientPub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return fail(err)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return fail(err)
	}
	authorized := filepath.Join(scratch, "authorized_keys")
	line := fmt.Sprintf("command=\"%s -c \\\"$SSH_ORIGINAL_COMMAND\\\"\",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty %s",
		gitShell, strings.TrimSpace(string(clientPub)))
	if err := os.WriteFile(authorized, []byte(line+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start as root without its privilege separation
		// directory; distributions create it at boot, containers often not.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return fail(err)
		}
	}
	hostFields := strings.Fields(string(hostPub))
	if len(hostFields) < 2 {
		return fail(fmt.Errorf("malformed host key %s", hostKey+".pub"))
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		config := filepath.Join(scratch, "sshd_config")
		cfg := strings.Join([]string{
			"Port " + strconv.Itoa(port),
			"ListenAddress 127.0.0.1",
			"HostKey " + hostKey,
			"PidFile none",
			"AuthorizedKeysFile " + authorized,
			"StrictModes no",
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"UsePAM no",
			"PermitRootLogin prohibit-password",
			"AllowUsers " + u.Username,
			"PrintMotd no",
			"LogLevel ERROR",
			"",
		}, "\n")
		if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
			return fail(err)
		}
		cmd := exec.Command(sshd, "-D", "-e", "-f", config)
		p, err := startProcess(cmd, filepath.Join(scratch, "sshd.log"))
		if err != nil {
			return fail(err)
		}
		if err := waitListening(addr, p.exited); err != nil {
			_ = p.stop()
			lastErr = fmt.Errorf("%w: %s", err, p.log())
			continue
		}
		known := filepath.Join(scratch, "known_hosts")
		if err := os.WriteFile(known, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, hostFields[0], hostFields[1])), 0o600); err != nil {
			_ = p.stop()
			return fail(err)
		}
		return &Server{Kind: SSH, Root: root, Addr: addr, SSHUser: u.Username,
			ClientKeyFile: clientKey, KnownHostsFile: known, authorizedKeys: authorized, scratch: scratch,
			stop: func() error {
				err := p.stop()
				os.RemoveAll(scratch)
				return err
			}}, nil
	}
	return fail(lastErr)
}

// GitSSHCommand returns a GIT_SSH_COMMAND value that makes the git CLI
// use this server's client key and known_hosts (SSH only).
func (s *Server) GitSSHCommand() string {
	return fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes",
		s.ClientKeyFile, s.KnownHostsFile)
}

// AddSSHKey generates another client key whose logins run command (a
// forced command such as "stoker-git-shell node-1") and returns the
// private key file (SSH only). sshd reads authorized_keys on every login.
func (s *Server) AddSSHKey(name, command string) (string, error) {
	if s.authorizedKeys == "" {
		return "", fmt.Errorf("add ssh key %s: not an SSH server", name)
	}
	if strings.ContainsAny(name, "/ ") || strings.Contains(command, `"`) {
		return "", fmt.Errorf("add ssh key %s: name or command not usable", name)
	}
	key := filepath.Join(s.scratch, "client_"+name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key).CombinedOutput(); err != nil {
		return "", fmt.Errorf("add ssh key %s: ssh-keygen: %w: %s", name, err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return "", fmt.Errorf("add ssh key %s: %w", name, err)
	}
	line := fmt.Sprintf("command=\"%s\",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty %s\n", command, strings.TrimSpace(string(pub)))
	f, err := os.OpenFile(s.authorizedKeys, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("add ssh key %s: %w", name, err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		return "", fmt.Errorf("add ssh key %s: %w", name, err)
	}
	return key, nil
}

// GitSSHCommandFor is GitSSHCommand with another client key (AddSSHKey).
func (s *Server) GitSSHCommandFor(keyFile string) string {
	return fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes",
		keyFile, s.KnownHostsFile)
}
