package gitsource_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// benchRemote seeds a repository of 50 files on a daemon or HTTP server
// and returns it with the URL the git CLI uses (credentials inline: the
// CLI has no other non-interactive way here).
func benchRemote(b *testing.B, kind gitserver.Kind) (remote, string) {
	b.Helper()
	s := gitserver.New(b, kind)
	r := remote{name: kind.String(), srv: s, repo: "bench.git", url: s.CreateRepo(b, "bench.git")}
	cliURL := r.url
	if kind == gitserver.HTTP {
		r.auth = gitsource.AuthOptions{Username: s.Username, PasswordFile: writeSecret(b, s.Password), LookupEnv: noEnv}
		cliURL = strings.Replace(r.url, "http://", "http://"+s.Username+":"+s.Password+"@", 1)
	}
	files := map[string]string{}
	for i := 0; i < 50; i++ {
		files[fmt.Sprintf("machineconfigs/%02d-config.yaml", i)] = strings.Repeat(fmt.Sprintf("line %d\n", i), 200)
	}
	s.SeedRepo(b, r.repo, files, "main")
	return r, cliURL
}

func cli(b *testing.B, dir string, args ...string) {
	b.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// BenchmarkChangeCheck compares Head (one ls-remote) with `git ls-remote`.
func BenchmarkChangeCheck(b *testing.B) {
	for _, kind := range []gitserver.Kind{gitserver.Daemon, gitserver.HTTP} {
		r, cliURL := benchRemote(b, kind)
		g := r.open(b, "")
		b.Run(kind.String()+"/gogit", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := g.Head(context.Background(), "main"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind.String()+"/gitcli", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cli(b, "", "ls-remote", cliURL, "refs/heads/main")
			}
		})
	}
}

// BenchmarkFetch compares an incremental fetch of one new commit (one of
// 50 files changed), and a fetch when nothing changed, with `git fetch`
// into a bare repository.
func BenchmarkFetch(b *testing.B) {
	for _, kind := range []gitserver.Kind{gitserver.Daemon, gitserver.HTTP} {
		r, cliURL := benchRemote(b, kind)
		ctx := context.Background()
		g := r.open(b, "")
		if _, err := g.Fetch(ctx, "main"); err != nil {
			b.Fatal(err)
		}
		bare := filepath.Join(b.TempDir(), "cli.git")
		cli(b, "", "init", "--bare", "-q", bare)
		spec := "+refs/heads/main:refs/remotes/origin/main"
		cli(b, bare, "fetch", "-q", "--depth=1", "--no-tags", cliURL, spec)
		n := 0
		push := func(b *testing.B) {
			b.StopTimer()
			n++
			r.srv.SeedRepo(b, r.repo, map[string]string{"machineconfigs/07-config.yaml": fmt.Sprintf("rev %d\n", n)}, "main")
			b.StartTimer()
		}
		b.Run(kind.String()+"/new-commit/gogit", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				push(b)
				if _, err := g.Fetch(ctx, "main"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind.String()+"/new-commit/gitcli", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				push(b)
				cli(b, bare, "fetch", "-q", "--no-tags", cliURL, spec)
			}
		})
		b.Run(kind.String()+"/unchanged/gogit", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := g.Fetch(ctx, "main"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind.String()+"/unchanged/gitcli", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cli(b, bare, "fetch", "-q", "--no-tags", cliURL, spec)
			}
		})
	}
}
