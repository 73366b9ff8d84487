package reconciler

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// TestStepBytesIndependentOfFleet measures, through a counting relay in
// front of a real git daemon, the bytes an agent fetches (ref check and
// fetch of stoker/status) for one rollout step in pools of 10 and 1,000
// nodes with maxUnavailable 10% (a step moves 1 node, then 100). In layout
// 2 a step moves the pool's cursor only, so the bytes must not grow with
// the pool. In layout 1 the step rewrites nodes/; git's thin-pack deltas
// keep that to about the changed entries, which grow with the step and so
// with the pool (logged and checked too, so the test sees what it
// measures). A one-node step (maxUnavailable 1) is logged for both.
func TestStepBytesIndependentOfFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 1,000 report branches")
	}
	measure := func(t *testing.T, layout, n int, maxUnavailable string) int64 {
		b := stepBytes(t, layout, n, maxUnavailable)
		t.Logf("layout %d, %4d nodes, maxUnavailable %3s: %5d bytes fetched by an agent for a step", layout, n, maxUnavailable, b)
		return b
	}
	v2small, v2large := measure(t, StatusLayout2, 10, "10%"), measure(t, StatusLayout2, 1000, "10%")
	v1small, v1large := measure(t, StatusLayout1, 10, "10%"), measure(t, StatusLayout1, 1000, "10%")
	measure(t, StatusLayout2, 1000, "1")
	measure(t, StatusLayout1, 1000, "1")
	// Same node-name widths at both sizes: only the pool's size differs,
	// and what a step's commit says of it: its message names at most
	// maxMessageNodes nodes (10 × "node-0000, "), the cursor's count has
	// two more digits.
	if d := v2large - v2small; d > 160 || d < -160 {
		t.Fatalf("layout 2: a step costs an agent %d bytes at 1,000 nodes and %d at 10; want the same (±160)", v2large, v2small)
	}
	if v1large < v1small+1000 {
		t.Fatalf("layout 1: %d bytes at 1,000 nodes, %d at 10: the measurement does not see the nodes/ tree", v1large, v1small)
	}
}

// stepBytes runs a hub writing layout over a pool of n nodes (reports in a
// repository of their own, as agents poll the config repo), lets it take
// three steps, the advanced nodes converging after each, and returns the
// most bytes one agent's ref check and fetch of stoker/status took for the
// second or third step (the first is the agent's first, whole, fetch).
func stepBytes(t *testing.T, layout, n int, maxUnavailable string) int64 {
	t.Helper()
	ctx := context.Background()
	srv := gitserver.New(t, gitserver.Daemon)
	srv.SeedRepo(t, "config", map[string]string{
		"pools/worker.yaml": strings.Replace(workerPool(false, 1), "maxUnavailable: 1", "maxUnavailable: "+maxUnavailable, 1),
		"mc/10-a.yaml":      fileMC("10-a", "worker", "/etc/a", "one"),
	}, "main")
	srv.CreateRepo(t, "reports")
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	labels := map[string]string{api.NodeRoleLabelPrefix + "worker": ""}
	var all []string
	for i := 0; i < n; i++ {
		all = append(all, fmt.Sprintf("node-%04d", i))
	}
	seedReports(t, srv.Path("reports"), all, false, func(node string) api.Report {
		return api.Report{Node: node, State: api.StateDone, Labels: labels, Heartbeat: now}
	})
	perStep := 1
	if strings.HasSuffix(maxUnavailable, "%") {
		perStep = max(1, n/10)
	}
	open := func(url string) gitsource.Repo {
		r, err := gitsource.Open(gitsource.Options{URL: url, WorkDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cfg, reports := open(srv.URL("config")), open(srv.URL("reports"))
	hub := NewHub(HubConfig{Config: cfg, Status: cfg, Reports: reports, StatusLayout: layout,
		Now: func() time.Time { return now }})
	counter := gitserver.NewCounter(t, srv)
	agent := open(counter.URL("config"))
	step := func() int64 {
		t.Helper()
		now = now.Add(time.Second)
		res, err := hub.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Steps) != perStep {
			t.Fatalf("reconcile advanced %d nodes, want %d", len(res.Steps), perStep)
		}
		before := counter.Sent()
		head, err := agent.Head(ctx, api.StatusBranch)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agent.Fetch(ctx, api.StatusBranch); err != nil {
			t.Fatal(err)
		}
		sent := counter.Sent() - before
		tree, err := agent.Tree(ctx, head)
		if err != nil {
			t.Fatal(err)
		}
		version, err := api.ReadLayout(tree, api.StatusBranch)
		if err != nil || version != layout {
			t.Fatalf("stoker/status layout %d, %v; want %d", version, err, layout)
		}
		var moved []string
		for _, s := range res.Steps {
			got, ok, err := api.StatusNodeTarget(tree, version, s.Node)
			if err != nil || !ok || got.DesiredConfig != s.To {
				t.Fatalf("agent of %s reads %+v, %v, %v; want %s", s.Node, got, ok, err, s.To)
			}
			moved = append(moved, s.Node)
		}
		// The nodes converge, so the next step may go.
		to := res.Steps[0].To
		seedReports(t, srv.Path("reports"), moved, true, func(node string) api.Report {
			return api.Report{Node: node, State: api.StateDone, CurrentConfig: to, Labels: labels, Heartbeat: now}
		})
		return sent
	}
	step() // the first render and step; the agent's first fetch is whole
	var most int64
	for i := 0; i < 2; i++ {
		most = max(most, step())
	}
	return most
}

// seedReports commits the report of each of nodes on its branch in the
// bare repository dir, in one git fast-import (update: on top of the
// branch's head).
func seedReports(t *testing.T, dir string, nodes []string, update bool, report func(node string) api.Report) {
	t.Helper()
	var stream bytes.Buffer
	for _, node := range nodes {
		data, err := yaml.Marshal(report(node))
		if err != nil {
			t.Fatal(err)
		}
		msg := "report " + node
		fmt.Fprintf(&stream, "commit refs/heads/%s\ncommitter t <t@stoker.invalid> 1772323200 +0000\ndata %d\n%s\n", api.ReportsBranch(node), len(msg), msg)
		if update {
			fmt.Fprintf(&stream, "from refs/heads/%s^0\n", api.ReportsBranch(node))
		}
		fmt.Fprintf(&stream, "M 100644 inline %s\ndata %d\n%s\n", api.ReportFile, len(data), data)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Env = append(cmd.Environ(), "GIT_DIR="+dir)
	cmd.Stdin = &stream
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
}
