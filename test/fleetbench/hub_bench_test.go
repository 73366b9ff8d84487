//go:build fleetbench

package fleetbench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler"
	"stoker.dev/stoker/test/gitserver"
)

var benchNodes = flag.Int("bench-nodes", 1000, "nodes BenchmarkHubIdle reconciles")

// BenchmarkHubIdle is one hub reconcile of an idle fleet of -bench-nodes
// nodes, every one Done at its pool's config, against the Git server the
// harness uses: moved=0 is a loop where no ref moved (one ref check),
// moved=k one where k nodes' heartbeats landed since the last loop (the
// hub fetches those k report branches, reads them, and rewrites
// stoker/fleet for their LAST-SEEN). A fleet of N nodes with heartbeat H
// and hub interval I sees N·I/H heartbeats per loop: 25 at 1,000 nodes,
// 15 s and 10 m. It reports the hub's CPU per loop (ns/op, the hub runs
// in this process), the Git server's CPU per loop, and bytes on the wire.
func BenchmarkHubIdle(b *testing.B) {
	n := *benchNodes
	dir := b.TempDir()
	srv, repos := benchServer(b, dir, "config.git")
	if _, err := gitserver.CommitFiles(srv.Path("config.git"), "main", seedFiles(b), nil, "seed"); err != nil {
		b.Fatal(err)
	}
	addr, daemon := serveGit(b, repos)
	px, err := newProxy(addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(px.close)
	lg := logrus.New()
	if os.Getenv("FLEETBENCH_LOG") != "" {
		lg.SetLevel(logrus.DebugLevel)
	} else {
		lg.SetOutput(io.Discard)
	}
	repo, err := gitsource.Open(gitsource.Options{URL: "git://" + px.addr() + "/config.git", WorkDir: filepath.Join(dir, "hub"), Logger: lg})
	if err != nil {
		b.Fatal(err)
	}
	clock := time.Now()
	hub := reconciler.NewHub(reconciler.HubConfig{Config: repo, Status: repo, Reports: repo, Log: lg, Now: func() time.Time { return clock }})
	ctx := context.Background()
	if _, err := hub.Reconcile(ctx); err != nil {
		b.Fatal(err)
	}
	rendered := workerRendered(b, repo)
	beat := clock
	pushReports(b, srv.Path("config.git"), n, 0, n, rendered, beat)
	// Until the hub has written every node and has nothing left to do.
	for i := 0; ; i++ {
		res, err := hub.Reconcile(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if res.Skipped {
			break
		}
		if i > 20 {
			b.Fatalf("hub still writing after %d reconciles of an idle fleet", i)
		}
	}
	for _, moved := range []int{0, n * 15 / 600, n / 10} {
		b.Run(fmt.Sprintf("nodes=%d/moved=%d", n, moved), func(b *testing.B) {
			var git, self time.Duration
			var wire counts
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				clock = clock.Add(15 * time.Second)
				if moved > 0 {
					beat = beat.Add(time.Second)
					pushReports(b, srv.Path("config.git"), n, (i*moved)%n, moved, rendered, beat)
				}
				g0, w0, s0 := cpu(daemon.Process.Pid), px.snapshot(), cpu(os.Getpid())
				b.StartTimer()
				res, err := hub.Reconcile(ctx)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if moved == 0 && !res.Skipped {
					b.Fatalf("a loop with no ref moved did not skip")
				}
				px.waitIdle()
				git += cpu(daemon.Process.Pid) - g0
				self += cpu(os.Getpid()) - s0
				wire = add(wire, px.snapshot().sub(w0))
				b.StartTimer()
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			rss, _ := memKiB(os.Getpid())
			// The hub's live heap after its loops (this process holds
			// little else), and the process's RSS.
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(rss)/1024, "rss-MiB")
			b.ReportMetric(float64(self.Microseconds())/float64(b.N), "hub-cpu-µs/op")
			b.ReportMetric(float64(git.Microseconds())/float64(b.N), "git-µs/op")
			b.ReportMetric(float64(wire.down)/float64(b.N), "B-down/op")
			b.ReportMetric(float64(wire.up)/float64(b.N), "B-up/op")
			b.ReportMetric(float64(wire.conns)/float64(b.N), "conns/op")
		})
	}
}

func add(a, b counts) counts { return counts{a.conns + b.conns, a.up + b.up, a.down + b.down} }

func workerRendered(b *testing.B, repo gitsource.Repo) string {
	ctx := context.Background()
	heads, err := repo.Fetch(ctx, api.StatusBranch)
	if err != nil {
		b.Fatal(err)
	}
	tree, err := repo.Tree(ctx, heads[api.StatusBranch])
	if err != nil {
		b.Fatal(err)
	}
	data, err := fs.ReadFile(tree, api.PoolFile("worker"))
	if err != nil {
		b.Fatal(err)
	}
	var p api.PoolTarget
	if err := yaml.Unmarshal(data, &p); err != nil || p.Rendered == "" {
		b.Fatalf("worker pool on %s: %v (%s)", api.StatusBranch, err, data)
	}
	return p.Rendered
}

// pushReports writes k nodes' reports (from node first, wrapping), Done
// at rendered with heartbeat at, as the agents would, in one
// `git fast-import` run on the server's repository.
func pushReports(b *testing.B, gitDir string, n, first, k int, rendered string, at time.Time) {
	var in bytes.Buffer
	info, err := yaml.Marshal(api.AgentInfo{AgentVersion: "fleetbench", StatusLayouts: api.StatusLayouts})
	if err != nil {
		b.Fatal(err)
	}
	for j := 0; j < k; j++ {
		node := fmt.Sprintf("node-%05d", (first+j)%n)
		rep, err := yaml.Marshal(api.Report{Node: node, State: api.StateDone, CurrentConfig: rendered, DesiredConfig: rendered,
			Labels: map[string]string{"node-role.kubernetes.io/worker": ""}, Since: at.UTC().Truncate(time.Second),
			Heartbeat: at.UTC().Truncate(time.Second), AgentVersion: "fleetbench"})
		if err != nil {
			b.Fatal(err)
		}
		msg := "report " + node + ": Done at " + rendered
		fmt.Fprintf(&in, "commit refs/heads/%s\ncommitter stoker-agent <a@%s> %d +0000\ndata %d\n%s\n", api.ReportsBranch(node), node, at.Unix(), len(msg), msg)
		fmt.Fprintf(&in, "deleteall\nM 100644 inline %s\ndata %d\n%s\nM 100644 inline %s\ndata %d\n%s\n\n",
			api.ReportFile, len(rep), rep, api.AgentFile, len(info), info)
	}
	cmd := exec.Command("git", "fast-import", "--quiet", "--force")
	cmd.Env = append(os.Environ(), "GIT_DIR="+gitDir)
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("fast-import %d reports: %v: %s", k, err, strings.TrimSpace(string(out)))
	}
}

// BenchmarkReportPush is one agent's report push (gitsource.Commit of
// report.yaml on its own branch) to the repository holding every node's
// report branch, at -bench-nodes branches and at 10: Git protocol v1's
// receive-pack advertises every ref to each pusher, so a heartbeat's
// bytes and the server's CPU grow with the fleet. It reports the
// pusher's CPU (ns/op is wall), the Git server's, and bytes on the wire.
func BenchmarkReportPush(b *testing.B) {
	for _, n := range []int{10, *benchNodes} {
		b.Run(fmt.Sprintf("branches=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			srv, repos := benchServer(b, dir, "reports.git")
			pushReports(b, srv.Path("reports.git"), n, 0, n, "rendered-worker-0", time.Now())
			addr, daemon := serveGit(b, repos)
			px, err := newProxy(addr)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(px.close)
			repo, err := gitsource.Open(gitsource.Options{URL: "git://" + px.addr() + "/reports.git", WorkDir: filepath.Join(dir, "agent")})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			branch := api.ReportsBranch("node-00000")
			head, err := repo.Head(ctx, branch)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := repo.Fetch(ctx, branch); err != nil {
				b.Fatal(err)
			}
			var git, self time.Duration
			var wire counts
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				data := []byte(fmt.Sprintf("node: node-00000\nstate: Done\nheartbeat: \"%s\"\n", time.Now().Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339)))
				g0, w0, s0 := cpu(daemon.Process.Pid), px.snapshot(), cpu(os.Getpid())
				b.StartTimer()
				c, err := repo.Commit(ctx, gitsource.CommitRequest{Branch: branch, Parent: head, Changes: map[string][]byte{api.ReportFile: data},
					Message: "report node-00000: Done", Author: gitsource.Signature{Name: "stoker-agent node-00000", Email: "a@node-00000"}})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				head = c
				px.waitIdle()
				git += cpu(daemon.Process.Pid) - g0
				self += cpu(os.Getpid()) - s0
				wire = add(wire, px.snapshot().sub(w0))
				b.StartTimer()
			}
			b.ReportMetric(float64(self.Microseconds())/float64(b.N), "agent-cpu-µs/op")
			b.ReportMetric(float64(git.Microseconds())/float64(b.N), "git-µs/op")
			b.ReportMetric(float64(wire.down)/float64(b.N), "B-down/op")
			b.ReportMetric(float64(wire.up)/float64(b.N), "B-up/op")
		})
	}
}

// benchServer is a Git server root under dir (dir/repos) holding the
// empty repository name.
func benchServer(b *testing.B, dir, name string) (*gitserver.Server, string) {
	b.Helper()
	repos := filepath.Join(dir, "repos")
	srv := &gitserver.Server{Kind: gitserver.Daemon, Root: repos}
	if err := os.MkdirAll(repos, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := srv.Create(name); err != nil {
		b.Fatal(err)
	}
	return srv, repos
}
