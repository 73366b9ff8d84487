package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/httpserver"
	"stoker.dev/stoker/test/gitserver"
)

// TestHubMetrics: a bad commit is a "render_error" reconcile (not a
// success) with the default branch's errors counted on every pool; paused
// pools, pool conditions and nodes by state are gauges; no metric carries
// a total beside its parts.
func TestHubMetrics(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(true, 1),
		"mc/50-x.yaml":      fileMC("50-x", "worker", "/etc/x", "1"),
	})
	reg := prometheus.NewRegistry()
	e.hub.cfg.Metrics = httpserver.NewMetrics(reg)
	e.addNode("w1", "worker")
	e.addNode("w2", "worker")
	e.reconcile()
	e.push("main", map[string]string{"mc/70-bad.yaml": fileMC("70-bad", "worker", "/usr/bin/evil", "x")})
	e.reconcile()
	want := `
# HELP stoker_hub_reconciles_total Hub reconciles by result (success, skipped, render_error: ran but a source does not render, error).
# TYPE stoker_hub_reconciles_total counter
stoker_hub_reconciles_total{result="render_error"} 1
stoker_hub_reconciles_total{result="success"} 1
# HELP stoker_hub_render_errors Render errors per pool at the last reconcile.
# TYPE stoker_hub_render_errors gauge
stoker_hub_render_errors{pool="master"} 1
stoker_hub_render_errors{pool="worker"} 1
# HELP stoker_hub_pool_paused 1 when the pool is paused (spec.paused), else 0.
# TYPE stoker_hub_pool_paused gauge
stoker_hub_pool_paused{pool="master"} 0
stoker_hub_pool_paused{pool="worker"} 1
`
	if err := promtest.GatherAndCompare(reg, strings.NewReader(want), "stoker_hub_reconciles_total", "stoker_hub_render_errors", "stoker_hub_pool_paused"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "total" {
					t.Fatalf("%s has a %s=\"total\" series beside its parts", mf.GetName(), l.GetName())
				}
			}
		}
	}
	for _, n := range []string{"stoker_hub_pool_machine_count", "stoker_hub_pool_condition", "stoker_hub_nodes"} {
		if !seen[n] {
			t.Fatalf("no %s", n)
		}
	}
	// The two nodes never applied a config (paused pool): not Done, and
	// the node states add up to the nodes.
	if got := promtest.ToFloat64(e.hub.cfg.Metrics.NodesGauge("")) + promtest.ToFloat64(e.hub.cfg.Metrics.NodesGauge(string(api.StateDone))); got != 2 {
		t.Fatalf("nodes by state add up to %v, want 2", got)
	}
	if got := promtest.ToFloat64(e.hub.cfg.Metrics.NodesGauge(string(api.StateUnreachable))); got != 0 {
		t.Fatalf("unreachable nodes %v", got)
	}
	// An hour later without reports (unreachable after a minute): both
	// nodes are counted unreachable.
	e.hub.cfg.UnreachableAfter = time.Minute
	e.now = e.now.Add(time.Hour)
	e.reconcile()
	if got := promtest.ToFloat64(e.hub.cfg.Metrics.NodesGauge(string(api.StateUnreachable))); got != 2 {
		t.Fatalf("stoker_hub_nodes{state=\"Unreachable\"} = %v, want 2", got)
	}
}

// TestRunHubRemovesTempWorkDir: without --work-dir the hub's temporary Git
// cache goes when the hub exits; hub.yaml on stoker/fleet names the build.
func TestRunHubRemovesTempWorkDir(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	srv.SeedRepo(t, "config", map[string]string{"mc/50-x.yaml": fileMC("50-x", "worker", "/etc/x", "1")}, "main")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunHub(ctx, HubOptions{RepoURL: srv.URL("config"), Interval: time.Hour, Version: "v-test"})
	}()
	waitFor(t, "the first reconcile", func() bool { return srv.Head(t, "config", api.FleetBranch) != "" })
	if m, _ := filepath.Glob(filepath.Join(tmp, "stoker-hub-*")); len(m) != 1 {
		t.Fatalf("work dirs while running: %v", m)
	}
	// The hub names its build on stoker/fleet, for `stoker version`.
	if out, err := gitserver.Git(srv.Path("config"), nil, "show", api.FleetBranch+":"+api.HubFile); err != nil || !strings.Contains(out, "version: v-test") {
		t.Fatalf("%s: %q %v", api.HubFile, out, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(tmp, "stoker-hub-*")); len(m) != 0 {
		entries, _ := os.ReadDir(tmp)
		t.Fatalf("left behind: %v (%v)", m, entries)
	}
}
