package gitserver

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Kind selects the transport a Server speaks.
type Kind int

const (
	// Daemon is `git daemon --enable=receive-pack` (git://, no auth).
	Daemon Kind = iota
	// HTTP is `git http-backend` behind net/http/cgi (http://, basic or
	// bearer auth required).
	HTTP
	// SSH is sshd with a git-shell forced command (ssh://, key auth, host
	// key in KnownHostsFile).
	SSH
)

// Kinds lists every transport, for table tests over all of them.
var Kinds = []Kind{Daemon, HTTP, SSH}

// String returns the transport's name, for test names.
func (k Kind) String() string {
	switch k {
	case Daemon:
		return "daemon"
	case HTTP:
		return "http"
	case SSH:
		return "ssh"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Server is one running Git server serving the bare repositories under Root.
type Server struct {
	Kind Kind
	// Root holds the bare repositories, one directory per name.
	Root string
	// Addr is host:port on 127.0.0.1.
	Addr string

	// Username, Password and Token are the HTTP credentials (HTTP only).
	// Either basic auth with Username/Password or "Authorization: Bearer
	// Token" is accepted.
	Username, Password, Token string

	// SSHUser is the login user, ClientKeyFile the client's private key
	// (OpenSSH PEM, no passphrase), and KnownHostsFile a known_hosts file
	// with the server's host key (SSH only).
	SSHUser, ClientKeyFile, KnownHostsFile string

	http                    *authHandler // HTTP only
	authorizedKeys, scratch string       // SSH only
	stop                    func() error
}

// Start starts a server of kind serving bare repositories under root (which
// must exist); scratch files (keys, configs) go to a directory next to it.
// The caller closes it.
func Start(kind Kind, root string) (*Server, error) {
	switch kind {
	case Daemon:
		return StartDaemon(root)
	case HTTP:
		return StartHTTP(root)
	case SSH:
		return StartSSH(root)
	}
	return nil, fmt.Errorf("start git server: unknown kind %d", int(kind))
}

// New starts a server of kind for the test's lifetime, serving repositories
// under a fresh temporary directory. An SSH server is skipped (t.Skip) when
// sshd is not installed; any other failure fails the test.
func New(t testing.TB, kind Kind) *Server {
	t.Helper()
	if kind == SSH && SSHDPath() == "" {
		t.Skip("sshd not installed; install openssh-server to run the ssh transport tests")
	}
	root := filepath.Join(t.TempDir(), "repos")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatalf("create repo root: %v", err)
	}
	s, err := Start(kind, root)
	if err != nil {
		t.Fatalf("start %s git server: %v", kind, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("stop %s git server: %v", kind, err)
		}
	})
	return s
}

// Close stops the server. The repositories stay on disk.
func (s *Server) Close() error {
	if s.stop == nil {
		return nil
	}
	stop := s.stop
	s.stop = nil
	return stop()
}

// URL returns the clone URL of repository name on this server. It never
// carries credentials.
func (s *Server) URL(name string) string {
	switch s.Kind {
	case Daemon:
		return "git://" + s.Addr + "/" + name
	case HTTP:
		return "http://" + s.Addr + "/" + name
	case SSH:
		return "ssh://" + s.SSHUser + "@" + s.Addr + filepath.ToSlash(s.Path(name))
	}
	return ""
}

// Path returns the on-disk bare repository of name.
func (s *Server) Path(name string) string {
	return filepath.Join(s.Root, filepath.FromSlash(name))
}

// CreateRepo creates an empty bare repository name that accepts pushes and
// returns its URL.
func (s *Server) CreateRepo(t testing.TB, name string) string {
	t.Helper()
	if err := s.Create(name); err != nil {
		t.Fatal(err)
	}
	return s.URL(name)
}

// Create is CreateRepo without a testing.TB. It does nothing when the
// repository exists.
func (s *Server) Create(name string) error {
	dir := s.Path(name)
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create repo %s: %w", name, err)
	}
	if _, err := Git(dir, nil, "init", "--bare", "--quiet", "--initial-branch=main"); err != nil {
		return fmt.Errorf("create repo %s: %w", name, err)
	}
	// http-backend refuses pushes from anonymous users only; daemon needs
	// receive-pack per repo or --enable (given); export for daemon.
	if err := os.WriteFile(filepath.Join(dir, "git-daemon-export-ok"), nil, 0o644); err != nil {
		return fmt.Errorf("create repo %s: %w", name, err)
	}
	if _, err := Git(dir, nil, "config", "http.receivepack", "true"); err != nil {
		return fmt.Errorf("create repo %s: %w", name, err)
	}
	return nil
}

// SeedRepo commits files (path → content; "" content still writes an empty
// file) on top of branch of repository name, creating the repository and
// the branch as needed, and returns the new commit. It uses the git CLI
// directly on the bare repository, so it works whatever the transport.
func (s *Server) SeedRepo(t testing.TB, name string, files map[string]string, branch string) string {
	t.Helper()
	c, err := s.Seed(name, files, nil, branch)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Seed is SeedRepo without a testing.TB; paths in remove are deleted.
func (s *Server) Seed(name string, files map[string]string, remove []string, branch string) (string, error) {
	if err := s.Create(name); err != nil {
		return "", err
	}
	return CommitFiles(s.Path(name), branch, files, remove, fmt.Sprintf("seed %d files", len(files)))
}

// Head returns the commit branch points at in repository name, or "" when
// the branch does not exist. It reads the disk, not the transport.
func (s *Server) Head(t testing.TB, name, branch string) string {
	t.Helper()
	out, err := Git(s.Path(name), nil, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// CommitFiles commits files (and deletes remove) on top of branch in the
// bare repository gitDir with the git CLI plumbing, creating branch as an
// orphan when missing, and returns the new commit. The ref update is
// compare-and-swap against the commit it started from.
func CommitFiles(gitDir, branch string, files map[string]string, remove []string, message string) (string, error) {
	return CommitFilesSigned(gitDir, branch, files, remove, message, "")
}

// CommitFilesSigned is CommitFiles with the commit signed by the git CLI
// (`commit-tree -S`, gpg.format=ssh) with the SSH private key in
// signingKey; "" leaves it unsigned.
func CommitFilesSigned(gitDir, branch string, files map[string]string, remove []string, message, signingKey string) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("commit to %s in %s: %w", branch, gitDir, err)
	}
	ref := "refs/heads/" + branch
	parent := ""
	if out, err := Git(gitDir, nil, "rev-parse", "--verify", "--quiet", ref); err == nil {
		parent = strings.TrimSpace(out)
	}
	idx, err := os.CreateTemp("", "gitserver-index-")
	if err != nil {
		return fail(err)
	}
	idx.Close()
	os.Remove(idx.Name()) // git wants to create it
	defer os.Remove(idx.Name())
	env := []string{"GIT_INDEX_FILE=" + idx.Name()}
	if parent != "" {
		if _, err := Git(gitDir, env, "read-tree", parent); err != nil {
			return fail(err)
		}
	} else if _, err := Git(gitDir, env, "read-tree", "--empty"); err != nil {
		return fail(err)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		blob, err := gitStdin(gitDir, nil, []byte(files[p]), "hash-object", "-w", "--stdin")
		if err != nil {
			return fail(err)
		}
		if _, err := Git(gitDir, env, "update-index", "--add", "--cacheinfo", "100644,"+strings.TrimSpace(blob)+","+p); err != nil {
			return fail(err)
		}
	}
	// --force-remove needs a work tree; --index-info with mode 0 removes
	// an entry in a bare repository too.
	for _, p := range remove {
		line := "0 " + strings.Repeat("0", 40) + "\t" + p + "\n"
		if _, err := gitStdin(gitDir, env, []byte(line), "update-index", "--index-info"); err != nil {
			return fail(err)
		}
	}
	tree, err := Git(gitDir, env, "write-tree")
	if err != nil {
		return fail(err)
	}
	args := []string{"commit-tree", strings.TrimSpace(tree), "-m", message}
	if signingKey != "" {
		args = append([]string{"-c", "gpg.format=ssh", "-c", "user.signingKey=" + signingKey}, append(args, "-S")...)
	}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	commit, err := Git(gitDir, nil, args...)
	if err != nil {
		return fail(err)
	}
	commit = strings.TrimSpace(commit)
	old := parent
	if old == "" {
		old = strings.Repeat("0", 40)
	}
	if _, err := Git(gitDir, nil, "update-ref", ref, commit, old); err != nil {
		return fail(err)
	}
	return commit, nil
}

// repoLocalEnv are the variables that point git at a repository other
// than the one in its directory (`git rev-parse --local-env-vars`): a
// test run under `git bisect run` or a hook inherits GIT_DIR, and every
// command here would then write to the caller's repository.
var repoLocalEnv = map[string]bool{
	"GIT_ALTERNATE_OBJECT_DIRECTORIES": true, "GIT_CONFIG": true, "GIT_CONFIG_PARAMETERS": true,
	"GIT_CONFIG_COUNT": true, "GIT_OBJECT_DIRECTORY": true, "GIT_DIR": true, "GIT_WORK_TREE": true,
	"GIT_IMPLICIT_WORK_TREE": true, "GIT_GRAFT_FILE": true, "GIT_INDEX_FILE": true,
	"GIT_NO_REPLACE_OBJECTS": true, "GIT_REPLACE_REF_BASE": true, "GIT_PREFIX": true,
	"GIT_INTERNAL_SUPER_PREFIX": true, "GIT_SHALLOW_FILE": true, "GIT_COMMON_DIR": true,
}

// gitEnv is the environment of every git command here: the process's own
// without repoLocalEnv, no system or global config, a fixed identity.
func gitEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !repoLocalEnv[k] {
			env = append(env, kv)
		}
	}
	env = append(env,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=gitserver", "GIT_AUTHOR_EMAIL=gitserver@localhost",
		"GIT_COMMITTER_NAME=gitserver", "GIT_COMMITTER_EMAIL=gitserver@localhost",
		"GIT_TERMINAL_PROMPT=0",
	)
	return append(env, extra...)
}

// Git runs the git CLI in dir with extra environment and returns its
// standard output.
func Git(dir string, env []string, args ...string) (string, error) {
	return gitStdin(dir, env, nil, args...)
}

// GitCombined runs the git CLI like Git and returns its standard output
// and standard error together (a push's "remote:" lines), also on failure.
func GitCombined(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git %s: %w", args[0], err)
	}
	return string(out), nil
}

func gitStdin(dir string, env []string, stdin []byte, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(env)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// servers (git daemon, sshd) that cannot listen on port 0 and report it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts connections or the process exits.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("server exited before listening on %s", addr)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server not listening on %s after 10s", addr)
}

// process runs a long-lived server command and stops it on close. Its
// stderr goes to a file (not a pipe) so lingering children of git daemon
// cannot keep Wait from returning.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

func startProcess(cmd *exec.Cmd, logPath string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	p := &process{cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// log returns what the server wrote so far, for error messages.
func (p *process) log() string {
	b, _ := os.ReadFile(p.logPath)
	return strings.TrimSpace(string(b))
}

func (p *process) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return nil
}

// InstallHook copies the executable src (e.g. deploy/git-hooks/update)
// into repository name as hooks/<hook> and sets the git config pairs in
// it (key, value, key, value...; a key given twice adds a second value).
func (s *Server) InstallHook(name, hook, src string, config ...string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("install hook %s in %s: %w", hook, name, err)
	}
	dst := filepath.Join(s.Path(name), "hooks", hook)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("install hook %s in %s: %w", hook, name, err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return fmt.Errorf("install hook %s in %s: %w", hook, name, err)
	}
	for i := 0; i+1 < len(config); i += 2 {
		if _, err := Git(s.Path(name), nil, "config", "--add", config[i], config[i+1]); err != nil {
			return fmt.Errorf("install hook %s in %s: %w", hook, name, err)
		}
	}
	return nil
}
