package gitsource_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// TestIdlePollBytes measures, through a counting relay in front of a real
// git daemon, the bytes of an agent's idle poll (one ref check of
// stoker/status: go-git speaks protocol v1, so the daemon advertises every
// ref of the repo) at 10 and 1,000 nodes, with the report branches in a
// repository of their own (the default: --reports-repo is required) and
// in the polled repo (--reports-repo = --repo, the default before). Only
// the first is independent of the fleet's size; the second grows by the
// advertisement of one ref (~80 B) per node.
func TestIdlePollBytes(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	counter := gitserver.NewCounter(t, srv)
	poll := func(t *testing.T, nodes int, reportsInPolledRepo bool) int64 {
		name := fmt.Sprintf("poll-%d-%v.git", nodes, reportsInPolledRepo)
		srv.CreateRepo(t, name)
		srv.SeedRepo(t, name, map[string]string{"pools/worker.yaml": "name: worker\n"}, "stoker/status")
		head := srv.SeedRepo(t, name, map[string]string{"mc/10-a.yaml": "a\n"}, "main")
		srv.SeedRepo(t, name, map[string]string{"README.md": "fleet\n"}, "stoker/fleet")
		if reportsInPolledRepo {
			var refs strings.Builder
			for i := 0; i < nodes; i++ {
				fmt.Fprintf(&refs, "create refs/heads/stoker/reports/node-%04d %s\n", i, head)
			}
			cmd := exec.Command("git", "update-ref", "--stdin")
			cmd.Env = append(cmd.Environ(), "GIT_DIR="+srv.Path(name))
			cmd.Stdin = strings.NewReader(refs.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git update-ref: %v\n%s", err, out)
			}
		}
		g, err := gitsource.Open(gitsource.Options{URL: counter.URL(name), WorkDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		before := counter.Sent()
		if _, err := g.Head(context.Background(), "stoker/status"); err != nil {
			t.Fatal(err)
		}
		b := counter.Sent() - before
		where := "own repo"
		if reportsInPolledRepo {
			where = "polled repo"
		}
		t.Logf("%4d nodes, reports in the %s: %6d bytes per idle poll", nodes, where, b)
		return b
	}
	sepSmall, sepLarge := poll(t, 10, false), poll(t, 1000, false)
	inSmall, inLarge := poll(t, 10, true), poll(t, 1000, true)
	if sepLarge != sepSmall {
		t.Fatalf("reports in their own repo: %d bytes per poll at 1,000 nodes, %d at 10; want the same", sepLarge, sepSmall)
	}
	if perRef := float64(inLarge-inSmall) / 990; perRef < 50 {
		t.Fatalf("reports in the polled repo: %.0f bytes per extra ref; the measurement does not see the advertisement", perRef)
	}
}
