package gitserver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"stoker.dev/stoker/test/gitserver"
)

// TestServers clones, pushes and re-reads a seeded repository through every
// transport with the git CLI.
func TestServers(t *testing.T) {
	for _, kind := range gitserver.Kinds {
		t.Run(kind.String(), func(t *testing.T) {
			s := gitserver.New(t, kind)
			seed := s.SeedRepo(t, "cfg.git", map[string]string{"a/b.txt": "hello\n"}, "main")
			url := s.URL("cfg.git")
			env := []string{"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"}
			switch kind {
			case gitserver.HTTP:
				url = strings.Replace(url, "http://", "http://"+s.Username+":"+s.Password+"@", 1)
			case gitserver.SSH:
				env = append(env, "GIT_SSH_COMMAND="+s.GitSSHCommand())
			}
			dir := filepath.Join(t.TempDir(), "clone")
			run := func(dir string, args ...string) string {
				t.Helper()
				cmd := exec.Command("git", args...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), env...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
				return strings.TrimSpace(string(out))
			}
			run("", "clone", "-q", "-b", "main", url, dir)
			if got := run(dir, "rev-parse", "HEAD"); got != seed {
				t.Fatalf("cloned HEAD = %s, want seeded %s", got, seed)
			}
			b, err := os.ReadFile(filepath.Join(dir, "a/b.txt"))
			if err != nil || string(b) != "hello\n" {
				t.Fatalf("a/b.txt = %q, %v", b, err)
			}
			if err := os.WriteFile(filepath.Join(dir, "c.txt"), []byte("pushed\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			run(dir, "add", "c.txt")
			run(dir, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "push")
			run(dir, "push", "-q", "origin", "main")
			if got, want := s.Head(t, "cfg.git", "main"), run(dir, "rev-parse", "HEAD"); got != want {
				t.Fatalf("server head after push = %s, want %s", got, want)
			}
		})
	}
}

// TestHTTPRejectsWrongPassword checks the HTTP server really enforces auth.
func TestHTTPRejectsWrongPassword(t *testing.T) {
	s := gitserver.New(t, gitserver.HTTP)
	s.SeedRepo(t, "r.git", map[string]string{"f": "x"}, "main")
	url := strings.Replace(s.URL("r.git"), "http://", "http://"+s.Username+":wrong@", 1)
	cmd := exec.Command("git", "ls-remote", url)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ls-remote with a wrong password succeeded: %s", out)
	}
}

// TestGitIgnoresCallerRepository: a test run under `git bisect run` (or
// from a hook) inherits GIT_DIR; Create and CommitFiles must still work
// on the server's repository and leave the caller's alone (they once
// committed seeds onto the developer's own main and set core.bare).
func TestGitIgnoresCallerRepository(t *testing.T) {
	caller := t.TempDir()
	if _, err := gitserver.Git(caller, nil, "init", "--quiet", "--initial-branch=main"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_DIR", filepath.Join(caller, ".git"))
	t.Setenv("GIT_WORK_TREE", caller)
	srv := &gitserver.Server{Kind: gitserver.Daemon, Root: t.TempDir()}
	if err := srv.Create("r.git"); err != nil {
		t.Fatal(err)
	}
	c, err := gitserver.CommitFiles(srv.Path("r.git"), "main", map[string]string{"a": "1"}, nil, "seed")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := gitserver.Git(srv.Path("r.git"), nil, "rev-parse", "refs/heads/main"); err != nil || strings.TrimSpace(out) != c {
		t.Fatalf("server repo main = %q, %v; want %s", out, err, c)
	}
	os.Unsetenv("GIT_DIR")
	os.Unsetenv("GIT_WORK_TREE")
	cmd := exec.Command("git", "-C", caller, "rev-parse", "--verify", "--quiet", "refs/heads/main")
	if out, err := cmd.Output(); err == nil {
		t.Fatalf("caller's repository got a main branch %s", out)
	}
	cfg, err := os.ReadFile(filepath.Join(caller, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "bare = true") || strings.Contains(string(cfg), "receivepack") {
		t.Fatalf("caller's config changed:\n%s", cfg)
	}
}
