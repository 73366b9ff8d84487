package gitsource_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// remote is one repository on one transport, with the credentials to reach
// it.
type remote struct {
	name string
	srv  *gitserver.Server
	repo string // repository name on srv
	url  string
	auth gitsource.AuthOptions
}

// remotes starts every transport (file:// reads the daemon's directory)
// with an empty repository repo.
func remotes(t *testing.T, repo string) []remote {
	t.Helper()
	var out []remote
	for _, kind := range []string{"file", "daemon", "http", "ssh"} {
		out = append(out, newRemote(t, kind, repo))
	}
	return out
}

func newRemote(t *testing.T, kind, repo string) remote {
	t.Helper()
	var r remote
	switch kind {
	case "file":
		r.srv = gitserver.New(t, gitserver.Daemon)
		r.srv.CreateRepo(t, repo)
		r.url = "file://" + filepath.ToSlash(r.srv.Path(repo))
	case "daemon":
		r.srv = gitserver.New(t, gitserver.Daemon)
		r.url = r.srv.CreateRepo(t, repo)
	case "http":
		r.srv = gitserver.New(t, gitserver.HTTP)
		r.url = r.srv.CreateRepo(t, repo)
		r.auth = gitsource.AuthOptions{Username: r.srv.Username, PasswordFile: writeSecret(t, r.srv.Password), LookupEnv: noEnv}
	case "ssh":
		if gitserver.SSHDPath() == "" {
			t.Logf("sshd not installed; skipping the ssh transport")
			return remote{}
		}
		r.srv = gitserver.New(t, gitserver.SSH)
		r.url = r.srv.CreateRepo(t, repo)
		r.auth = gitsource.AuthOptions{SSHKeyFile: r.srv.ClientKeyFile, KnownHostsFile: r.srv.KnownHostsFile, LookupEnv: noEnv}
	default:
		t.Fatalf("unknown transport %s", kind)
	}
	r.name, r.repo = kind, repo
	return r
}

func noEnv(string) (string, bool) { return "", false }

func writeSecret(t testing.TB, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (r remote) open(t testing.TB, workDir string) *gitsource.GoGit {
	t.Helper()
	if workDir == "" {
		workDir = t.TempDir()
	}
	g, err := gitsource.Open(gitsource.Options{URL: r.url, WorkDir: workDir, Auth: r.auth, Timeout: 2 * time.Minute,
		Committer: gitsource.Signature{Name: "Stoker Hub", Email: "hub@stoker.test"}})
	if err != nil {
		t.Fatalf("open %s: %v", r.url, err)
	}
	return g
}

func readFile(t testing.TB, fsys fs.FS, name string) string {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// gitShow reads path at branch straight from the server's disk with the git
// CLI, an oracle independent of go-git.
func gitShow(t testing.TB, r remote, branch, path string) (string, error) {
	t.Helper()
	return gitserver.Git(r.srv.Path(r.repo), nil, "show", "refs/heads/"+branch+":"+path)
}

// TestOperations runs every operation on every transport.
func TestOperations(t *testing.T) {
	for _, r := range remotes(t, "config.git") {
		if r.srv == nil {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			ctx := context.Background()
			seed := r.srv.SeedRepo(t, r.repo, map[string]string{"pools/worker.yaml": "name: worker\n", "README.md": "hi\n"}, "main")
			r.srv.SeedRepo(t, r.repo, map[string]string{"a": "1"}, "stoker/reports/node-a")
			r.srv.SeedRepo(t, r.repo, map[string]string{"b": "2"}, "stoker/reports/node-b")
			g := r.open(t, "")

			head, err := g.Head(ctx, "main")
			if err != nil || head != seed {
				t.Fatalf("Head(main) = %q, %v; want %s", head, err, seed)
			}
			if _, err := g.Head(ctx, "nope"); !errors.Is(err, gitsource.ErrRefNotFound) {
				t.Fatalf("Head(nope) error = %v, want ErrRefNotFound", err)
			}
			refs, err := g.Refs(ctx, "stoker/reports/")
			if err != nil {
				t.Fatal(err)
			}
			if len(refs) != 2 || refs["stoker/reports/node-a"] == "" || refs["stoker/reports/node-b"] == "" {
				t.Fatalf("Refs(stoker/reports/) = %v, want node-a and node-b", refs)
			}

			got, err := g.Fetch(ctx, "main", "missing", "stoker/reports/node-a")
			if err != nil {
				t.Fatal(err)
			}
			if got["main"] != seed || got["stoker/reports/node-a"] != refs["stoker/reports/node-a"] || len(got) != 2 {
				t.Fatalf("Fetch = %v, want main=%s and node-a, no missing", got, seed)
			}
			tree, err := g.Tree(ctx, seed)
			if err != nil {
				t.Fatal(err)
			}
			if err := fstest.TestFS(tree, "pools/worker.yaml", "README.md"); err != nil {
				t.Fatal(err)
			}
			if s := readFile(t, tree, "pools/worker.yaml"); s != "name: worker\n" {
				t.Fatalf("pools/worker.yaml = %q", s)
			}

			// Incremental fetch after someone else pushes.
			next := r.srv.SeedRepo(t, r.repo, map[string]string{"pools/worker.yaml": "name: worker\nmaxUnavailable: 2\n"}, "main")
			got, err = g.Fetch(ctx, "main")
			if err != nil || got["main"] != next {
				t.Fatalf("second Fetch = %v, %v; want main=%s", got, err, next)
			}
			tree2, err := g.Tree(ctx, next)
			if err != nil {
				t.Fatal(err)
			}
			if s := readFile(t, tree2, "pools/worker.yaml"); !strings.Contains(s, "maxUnavailable") {
				t.Fatalf("after incremental fetch pools/worker.yaml = %q", s)
			}
			if _, err := g.Tree(ctx, strings.Repeat("ab", 20)); !errors.Is(err, gitsource.ErrRefNotFound) {
				t.Fatalf("Tree(unknown) error = %v, want ErrRefNotFound", err)
			}

			// Orphan branch, then a commit on top with a write and a delete.
			c1, err := g.Commit(ctx, gitsource.CommitRequest{Branch: "stoker/status", Message: "render main@x",
				Changes: map[string][]byte{"pools/worker.yaml": []byte("target: r1\n"), "nodes/n1.yaml": []byte("desired: r1\n")}})
			if err != nil {
				t.Fatal(err)
			}
			if h := r.srv.Head(t, r.repo, "stoker/status"); h != c1 {
				t.Fatalf("server stoker/status = %s, want pushed %s", h, c1)
			}
			c2, err := g.Commit(ctx, gitsource.CommitRequest{Branch: "stoker/status", Parent: c1, Message: "rollout",
				Author:  gitsource.Signature{Name: "Alice", Email: "alice@example.com"},
				Changes: map[string][]byte{"nodes/n1.yaml": nil, "nodes/n2.yaml": []byte("desired: r2\n")}})
			if err != nil {
				t.Fatal(err)
			}
			if s, err := gitShow(t, r, "stoker/status", "nodes/n2.yaml"); err != nil || s != "desired: r2\n" {
				t.Fatalf("server nodes/n2.yaml = %q, %v", s, err)
			}
			if _, err := gitShow(t, r, "stoker/status", "nodes/n1.yaml"); err == nil {
				t.Fatal("nodes/n1.yaml still on the server after a delete")
			}
			if s, _ := gitShow(t, r, "stoker/status", "pools/worker.yaml"); s != "target: r1\n" {
				t.Fatalf("untouched file changed: %q", s)
			}
			who, err := gitserver.Git(r.srv.Path(r.repo), nil, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", c2)
			if err != nil || strings.TrimSpace(who) != "Alice <alice@example.com>|Stoker Hub <hub@stoker.test>|rollout" {
				t.Fatalf("commit signature/message = %q, %v", who, err)
			}
			if _, err := g.Commit(ctx, gitsource.CommitRequest{Branch: "stoker/status", Parent: c2, Message: "noop",
				Changes: map[string][]byte{"nodes/n2.yaml": []byte("desired: r2\n")}}); !errors.Is(err, gitsource.ErrNothingToCommit) {
				t.Fatalf("same content commit error = %v, want ErrNothingToCommit", err)
			}
			c3, err := g.Commit(ctx, gitsource.CommitRequest{Branch: "stoker/status", Parent: c2, Message: "replace", Replace: true,
				Changes: map[string][]byte{"only.yaml": []byte("x\n")}})
			if err != nil {
				t.Fatal(err)
			}
			tree3, err := g.Tree(ctx, c3)
			if err != nil {
				t.Fatal(err)
			}
			if err := fstest.TestFS(tree3, "only.yaml"); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Stat(tree3, "pools"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Replace kept pools/: %v", err)
			}
			// A second cache reads what the first pushed.
			g2 := r.open(t, "")
			got, err = g2.Fetch(ctx, "stoker/status")
			if err != nil || got["stoker/status"] != c3 {
				t.Fatalf("other cache Fetch = %v, %v; want %s", got, err, c3)
			}
		})
	}
}

// TestCommitRace has two writers with separate caches race on one branch,
// both for an existing branch and for creating it: exactly one wins, the
// other gets ErrConflict and succeeds after re-reading.
func TestCommitRace(t *testing.T) {
	for _, r := range remotes(t, "race.git") {
		if r.srv == nil {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			ctx := context.Background()
			base := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "0"}, "status")
			for _, tc := range []struct {
				name, branch, parent string
			}{
				{"existing branch", "status", base},
				{"orphan branch", "fresh", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					a, b := r.open(t, ""), r.open(t, "")
					if tc.parent != "" {
						for _, g := range []*gitsource.GoGit{a, b} {
							if _, err := g.Fetch(ctx, tc.branch); err != nil {
								t.Fatal(err)
							}
						}
					}
					var wg sync.WaitGroup
					errs := make([]error, 2)
					commits := make([]string, 2)
					for i, g := range []*gitsource.GoGit{a, b} {
						wg.Add(1)
						go func() {
							defer wg.Done()
							commits[i], errs[i] = g.Commit(ctx, gitsource.CommitRequest{Branch: tc.branch, Parent: tc.parent,
								Message: "writer", Changes: map[string][]byte{"f": []byte{byte('a' + i)}}})
						}()
					}
					wg.Wait()
					winners, loser := 0, -1
					for i, err := range errs {
						switch {
						case err == nil:
							winners++
						case errors.Is(err, gitsource.ErrConflict):
							loser = i
						default:
							t.Fatalf("writer %d: unexpected error %v", i, err)
						}
					}
					if winners != 1 || loser < 0 {
						t.Fatalf("winners = %d, errors = %v; want exactly one winner and one ErrConflict", winners, errs)
					}
					winner := commits[1-loser]
					if h := r.srv.Head(t, r.repo, tc.branch); h != winner {
						t.Fatalf("server head = %s, want winner %s", h, winner)
					}
					g := []*gitsource.GoGit{a, b}[loser]
					got, err := g.Fetch(ctx, tc.branch)
					if err != nil {
						t.Fatal(err)
					}
					c, err := g.Commit(ctx, gitsource.CommitRequest{Branch: tc.branch, Parent: got[tc.branch],
						Message: "retry", Changes: map[string][]byte{"g": []byte("retry")}})
					if err != nil {
						t.Fatalf("retry after re-read: %v", err)
					}
					if parent, err := gitserver.Git(r.srv.Path(r.repo), nil, "rev-parse", c+"^"); err != nil || strings.TrimSpace(parent) != winner {
						t.Fatalf("retry commit parent = %q, %v; want winner %s", parent, err, winner)
					}
				})
			}
		})
	}
}

// TestStaleParentConflict commits on a parent the remote has left.
func TestStaleParentConflict(t *testing.T) {
	r := newRemote(t, "daemon", "stale.git")
	old := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "0"}, "main")
	g := r.open(t, "")
	if _, err := g.Fetch(context.Background(), "main"); err != nil {
		t.Fatal(err)
	}
	moved := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "1"}, "main")
	_, err := g.Commit(context.Background(), gitsource.CommitRequest{Branch: "main", Parent: old, Message: "m",
		Changes: map[string][]byte{"f": []byte("2")}})
	if !errors.Is(err, gitsource.ErrConflict) {
		t.Fatalf("commit on stale parent: %v, want ErrConflict", err)
	}
	if IsRetryable := gitsource.IsRetryable(err); IsRetryable {
		t.Fatal("ErrConflict classified retryable; callers must re-plan instead")
	}
	if h := r.srv.Head(t, r.repo, "main"); h != moved {
		t.Fatalf("server head = %s, want untouched %s (no force push)", h, moved)
	}
	// Parent the cache never saw (another process read it).
	g2 := r.open(t, "")
	if _, err := g2.Commit(context.Background(), gitsource.CommitRequest{Branch: "main", Parent: moved, Message: "m",
		Changes: map[string][]byte{"f": []byte("3")}}); err != nil {
		t.Fatalf("commit on a parent not yet in the cache: %v", err)
	}
}

// TestCommitRejectsBadInput checks paths and branch names never reach Git.
func TestCommitRejectsBadInput(t *testing.T) {
	r := newRemote(t, "file", "bad.git")
	g := r.open(t, "")
	for _, tc := range []struct {
		name string
		req  gitsource.CommitRequest
	}{
		{"dotdot", gitsource.CommitRequest{Branch: "b", Changes: map[string][]byte{"../x": []byte("1")}}},
		{"absolute", gitsource.CommitRequest{Branch: "b", Changes: map[string][]byte{"/etc/x": []byte("1")}}},
		{"dotgit", gitsource.CommitRequest{Branch: "b", Changes: map[string][]byte{"a/.git/config": []byte("1")}}},
		{"unclean", gitsource.CommitRequest{Branch: "b", Changes: map[string][]byte{"a//b": []byte("1")}}},
		{"no branch", gitsource.CommitRequest{Changes: map[string][]byte{"a": []byte("1")}}},
		{"bad branch", gitsource.CommitRequest{Branch: "a..b", Changes: map[string][]byte{"a": []byte("1")}}},
		{"bad parent", gitsource.CommitRequest{Branch: "b", Parent: "HEAD", Changes: map[string][]byte{"a": []byte("1")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := g.Commit(context.Background(), tc.req); err == nil {
				t.Fatal("commit accepted")
			}
		})
	}
	if h := r.srv.Head(t, r.repo, "b"); h != "" {
		t.Fatalf("branch b created: %s", h)
	}
}

// TestCacheCorruptionRecovery damages the cache in several ways; the next
// Open or Fetch must notice and re-clone.
func TestCacheCorruptionRecovery(t *testing.T) {
	r := newRemote(t, "daemon", "corrupt.git")
	seed := r.srv.SeedRepo(t, r.repo, map[string]string{"a/b": "content\n"}, "main")
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"objects deleted", func(t *testing.T, dir string) {
			must(t, os.RemoveAll(filepath.Join(dir, "objects")))
			must(t, os.MkdirAll(filepath.Join(dir, "objects"), 0o755))
		}},
		{"packs truncated", func(t *testing.T, dir string) {
			packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
			loose, _ := filepath.Glob(filepath.Join(dir, "objects", "??", "*"))
			if len(packs)+len(loose) == 0 {
				t.Fatal("no objects to damage")
			}
			for _, p := range append(packs, loose...) {
				must(t, os.WriteFile(p, []byte("garbage"), 0o644))
			}
		}},
		{"garbage config", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "config"), []byte("[[[ not git config"), 0o644))
		}},
		{"garbage ref", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "refs", "remotes", "origin", "main")
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte("0123456789012345678901234567890123456789\n"), 0o644))
			os.Remove(filepath.Join(dir, "packed-refs"))
		}},
		{"cache removed", func(t *testing.T, dir string) {
			must(t, os.RemoveAll(dir))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			work := t.TempDir()
			g := r.open(t, work)
			if _, err := g.Fetch(ctx, "main"); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, g.Dir())

			// Same process, same GoGit: the fetch notices, or the read
			// does and the next fetch repairs (an agent's next poll).
			read := func() (string, error) {
				got, err := g.Fetch(ctx, "main")
				if err != nil || got["main"] != seed {
					t.Fatalf("Fetch after damage = %v, %v; want main=%s", got, err, seed)
				}
				tree, err := g.Tree(ctx, seed)
				if err != nil {
					return "", err
				}
				b, err := fs.ReadFile(tree, "a/b")
				return string(b), err
			}
			s, err := read()
			if err != nil {
				t.Logf("first read after damage failed as expected: %v", err)
				s, err = read()
			}
			if err != nil || s != "content\n" {
				t.Fatalf("a/b after repair = %q, %v", s, err)
			}

			// A restart on a damaged cache: Open notices.
			tc.damage(t, g.Dir())
			g2 := r.open(t, work)
			got, err := g2.Fetch(ctx, "main")
			if err != nil || got["main"] != seed {
				t.Fatalf("Fetch after reopen = %v, %v", got, err)
			}
			if _, err := g2.Commit(ctx, gitsource.CommitRequest{Branch: "main", Parent: seed, Message: "probe",
				Changes: map[string][]byte{"a/b": []byte("content\n")}}); !errors.Is(err, gitsource.ErrNothingToCommit) {
				t.Fatalf("commit on repaired cache: %v, want ErrNothingToCommit", err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentUse hammers one GoGit from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	r := newRemote(t, "daemon", "conc.git")
	r.srv.SeedRepo(t, r.repo, map[string]string{"f": "0"}, "main")
	g := r.open(t, "")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				got, err := g.Fetch(ctx, "main")
				if err != nil {
					errs <- err
					return
				}
				tree, err := g.Tree(ctx, got["main"])
				if err != nil {
					errs <- err
					return
				}
				if _, err := fs.ReadFile(tree, "f"); err != nil {
					errs <- err
					return
				}
				if _, err := g.Head(ctx, "main"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 5; i++ {
		r.srv.SeedRepo(t, r.repo, map[string]string{"f": string(rune('1' + i))}, "main")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestWrongPassword gives a clear, permanent error without the password.
func TestWrongPassword(t *testing.T) {
	r := newRemote(t, "http", "auth.git")
	r.srv.SeedRepo(t, r.repo, map[string]string{"f": "0"}, "main")
	r.auth.PasswordFile = writeSecret(t, "hunter2-wrong-password")
	g := r.open(t, "")
	_, err := g.Head(context.Background(), "main")
	if err == nil {
		t.Fatal("ls-remote with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "authentication required") || !strings.Contains(err.Error(), r.url) {
		t.Fatalf("error %q does not say authentication failed for %s", err, r.url)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if gitsource.IsRetryable(err) {
		t.Fatalf("auth failure classified retryable: %v", err)
	}
}

// TestBearerToken authenticates over HTTP with a token from the environment.
func TestBearerToken(t *testing.T) {
	r := newRemote(t, "http", "token.git")
	seed := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "0"}, "main")
	r.auth = gitsource.AuthOptions{LookupEnv: func(k string) (string, bool) {
		if k == gitsource.EnvToken {
			return r.srv.Token, true
		}
		return "", false
	}}
	g := r.open(t, "")
	if h, err := g.Head(context.Background(), "main"); err != nil || h != seed {
		t.Fatalf("Head with bearer token = %q, %v", h, err)
	}
	if _, err := g.Commit(context.Background(), gitsource.CommitRequest{Branch: "main", Parent: seed, Message: "m",
		Changes: map[string][]byte{"g": []byte("1")}}); err != nil {
		t.Fatalf("push with bearer token: %v", err)
	}
}

// TestSSHHostKey: an unknown host key is a clear, permanent error; the
// explicit insecure option connects anyway.
func TestSSHHostKey(t *testing.T) {
	r := newRemote(t, "ssh", "hk.git")
	if r.srv == nil {
		t.Skip("sshd not installed")
	}
	seed := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "0"}, "main")
	other := gitserver.New(t, gitserver.SSH) // a different host key
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	b, err := os.ReadFile(other.KnownHostsFile)
	must(t, err)
	// Pin the other server's key under this server's address.
	line := strings.Replace(string(b), "]:"+other.Addr[strings.LastIndex(other.Addr, ":")+1:]+" ", "]:"+r.srv.Addr[strings.LastIndex(r.srv.Addr, ":")+1:]+" ", 1)
	if line == string(b) {
		t.Fatalf("could not re-address known_hosts line %q", b)
	}
	must(t, os.WriteFile(wrong, []byte(line), 0o600))

	for _, tc := range []struct {
		name  string
		known string
		want  string
	}{
		{"mismatched key", wrong, "key mismatch"},
		{"host not listed", writeSecret(t, ""), "key is unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r2 := r
			r2.auth.KnownHostsFile = tc.known
			g := r2.open(t, "")
			_, err := g.Head(context.Background(), "main")
			if err == nil {
				t.Fatal("connected despite an unknown host key")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), r.url) {
				t.Fatalf("error %q does not name the URL %s as written (the ssh user is no secret)", err, r.url)
			}
			if gitsource.IsRetryable(err) {
				t.Fatalf("host key failure classified retryable: %v", err)
			}
		})
	}
	t.Run("insecure option", func(t *testing.T) {
		r2 := r
		r2.auth.KnownHostsFile = wrong
		r2.auth.InsecureIgnoreHostKey = true
		if h, err := r2.open(t, "").Head(context.Background(), "main"); err != nil || h != seed {
			t.Fatalf("Head with InsecureIgnoreHostKey = %q, %v", h, err)
		}
	})
}

// TestRedaction greps every error and log line for the secrets.
func TestRedaction(t *testing.T) {
	r := newRemote(t, "http", "secret.git")
	seed := r.srv.SeedRepo(t, r.repo, map[string]string{"f": "0"}, "main")
	const urlSecret = "s3cr3t-in-url"
	const fileSecret = "s3cr3t-in-file"
	var logs bytes.Buffer
	logger := logrus.New()
	logger.Out = &logs
	logger.Level = logrus.DebugLevel
	ctx := context.Background()
	var errs []error
	for _, tc := range []struct {
		name string
		url  string
		auth gitsource.AuthOptions
	}{
		{"password in url", strings.Replace(r.url, "http://", "http://stoker:"+urlSecret+"@", 1), gitsource.AuthOptions{LookupEnv: noEnv}},
		{"token as url user", strings.Replace(r.url, "http://", "http://"+urlSecret+"@", 1), gitsource.AuthOptions{LookupEnv: noEnv}},
		{"password file", r.url, gitsource.AuthOptions{Username: "stoker", PasswordFile: writeSecret(t, fileSecret), LookupEnv: noEnv}},
		{"token env", r.url, gitsource.AuthOptions{LookupEnv: func(k string) (string, bool) {
			return fileSecret, k == gitsource.EnvToken
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := gitsource.Open(gitsource.Options{URL: tc.url, WorkDir: t.TempDir(), Auth: tc.auth, Logger: logger, Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.Head(ctx, "main")
			errs = append(errs, err)
			_, err = g.Fetch(ctx, "main")
			errs = append(errs, err)
			_, err = g.Commit(ctx, gitsource.CommitRequest{Branch: "main", Parent: seed, Message: "m", Changes: map[string][]byte{"x": []byte("1")}})
			errs = append(errs, err)
			// Damage the cache so the repair path logs too.
			must(t, os.WriteFile(filepath.Join(g.Dir(), "config"), []byte("garbage"), 0o644))
			_, err = gitsource.Open(gitsource.Options{URL: tc.url, WorkDir: filepath.Dir(g.Dir()), Auth: tc.auth, Logger: logger})
			errs = append(errs, err)
		})
	}
	failures := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failures++
		for _, s := range []string{urlSecret, fileSecret, r.srv.Password} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error leaks a secret: %v", err)
			}
		}
	}
	if failures < 8 {
		t.Fatalf("only %d operations failed; the test needs auth failures to inspect (errors: %v)", failures, errs)
	}
	if logs.Len() == 0 {
		t.Fatal("no log output to inspect")
	}
	for _, s := range []string{urlSecret, fileSecret} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs leak a secret:\n%s", logs.String())
		}
	}
}

// TestRetryableClassification checks errors from real failures.
func TestRetryableClassification(t *testing.T) {
	ctx := context.Background()
	// Connection refused: a port nobody listens on.
	refused := gitsource.Options{URL: "git://127.0.0.1:1/x.git", WorkDir: t.TempDir(), Timeout: 5 * time.Second}
	g, err := gitsource.Open(refused)
	must(t, err)
	_, err = g.Head(ctx, "main")
	if err == nil || !gitsource.IsRetryable(err) {
		t.Fatalf("connection refused: err = %v, retryable = %v; want retryable", err, gitsource.IsRetryable(err))
	}

	// A server that accepts and never answers: the timeout must fire.
	for _, scheme := range []string{"git", "http"} {
		t.Run("timeout "+scheme, func(t *testing.T) {
			addr := blackhole(t)
			g, err := gitsource.Open(gitsource.Options{URL: scheme + "://" + addr + "/x.git", WorkDir: t.TempDir(), Timeout: 300 * time.Millisecond})
			must(t, err)
			done := make(chan error, 1)
			go func() { _, err := g.Fetch(ctx, "main"); done <- err }()
			select {
			case err := <-done:
				if err == nil || !gitsource.IsRetryable(err) {
					t.Fatalf("hung server: err = %v, want retryable", err)
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("fetch from a hung server did not time out")
			}
		})
	}

	// Missing repository: permanent.
	r := newRemote(t, "http", "exists.git")
	r.url = strings.Replace(r.url, "exists.git", "missing.git", 1)
	_, err = r.open(t, "").Head(ctx, "main")
	if err == nil || gitsource.IsRetryable(err) {
		t.Fatalf("missing repository: err = %v, want permanent", err)
	}
}

// blackhole accepts connections and never writes.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String()
}
