//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/fleetview"
)

// TestSuccessThreshold: a pool of five with maxUnavailable 2 and
// stoker.dev/max-failed-percent 20; the first batch (w-0, w-1) gets the
// new config, w-0 cannot apply it and goes Degraded: 1 of 2 is more than
// 20%, so the rollout stops. w-1 finishing frees capacity, yet w-2..w-4
// keep their config, stoker/fleet says why, and a RolloutStopped event
// goes out. Raising the threshold to 60% lets the rollout go on.
func TestSuccessThreshold(t *testing.T) {
	t.Parallel()
	sink, srv := newEventSink(t, 0)
	repo := simpleRepo("2", false, "v1")
	repo["pools/worker.yaml"] = pool("worker", "2", false, "    stoker.dev/max-failed-percent: \"20\"\n")
	repo[api.NotificationsFile] = notificationsYAML
	f := newFleetNoHub(t, map[string]map[string]string{"main": repo})
	if _, err := f.StartHub("--notify-secrets-dir", notifySecrets(t, srv), "--notify-retry-base", "200ms"); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for i, zone := range []string{"a", "b", "c", "d", "e"} {
		n := worker(fmt.Sprintf("w-%d", i), zone)
		addNodes(t, f, n)
		nodes = append(nodes, n.Name)
	}
	v1 := poolOf(waitConverged(t, f, "", 3*time.Minute), "worker").Config

	// w-0 cannot write the new file: its parent is a regular file there.
	const blocked = "/etc/e2e/blocked/app.conf"
	if err := os.WriteFile(filepath.Join(f.Root("w-0"), "/etc/e2e/blocked"), []byte("in the way\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// w-1's agent is stopped, so the first batch stays unavailable until
	// w-0 has failed: the batch is exactly w-0 and w-1.
	f.Agent("w-1").Stop()
	if _, err := f.Commit("main", map[string]string{"machineconfigs/60-blocked.yaml": fileMC("60-blocked", "worker", blocked, "x")}, nil, "add a file w-0 cannot write"); err != nil {
		t.Fatal(err)
	}
	stopped := func(v *fleetview.FleetView) bool {
		p := poolOf(v, "worker")
		return p.Config != v1 && p.State == api.PoolStateStopped && p.RolloutStop != nil
	}
	v, err := f.WaitFor(context.Background(), 2*time.Minute, stopped, nil)
	if err != nil {
		t.Fatalf("rollout did not stop: %v\n%s", err, table(v))
	}
	v2 := poolOf(v, "worker").Config
	p := poolOf(v, "worker")
	if s := p.RolloutStop; s.Target != v2 || s.Degraded != 1 || s.Updated != 2 || s.MaxFailedPercent != 20 || strings.Join(s.Nodes, ",") != "w-0" {
		t.Errorf("rolloutStop = %+v, want 1 of 2 (w-0) on %s at 20%%", s, v2)
	}
	if c := p.PoolCondition(api.PoolUpdating); c == nil || c.Status != "False" || c.Reason != api.ReasonRolloutStopped || !strings.Contains(c.Message, "1 of 2 nodes given it went Degraded (w-0), 50% > stoker.dev/max-failed-percent 20%") {
		t.Errorf("Updating condition = %+v", c)
	}
	if n := nodeOf(v, "w-0"); n.State != api.StateDegraded {
		t.Errorf("w-0 = %+v, want Degraded", n)
	}
	// w-1 comes back and finishes: capacity frees up, the pool stays stopped.
	if _, err := f.StartAgent("w-1"); err != nil {
		t.Fatal(err)
	}
	v, err = f.WaitFor(context.Background(), 2*time.Minute, func(v *fleetview.FleetView) bool {
		n := nodeOf(v, "w-1")
		return n.State == api.StateDone && n.CurrentConfig == v2
	}, nil)
	if err != nil {
		t.Fatalf("w-1 did not finish: %v\n%s", err, table(v))
	}
	// The reconcile that saw w-1 Done planned from it (stoker/fleet's
	// desired configs are the plan written to stoker/status).
	for _, n := range nodes[2:] {
		if d := nodeOf(v, n).DesiredConfig; d != v1 {
			t.Errorf("%s desired %s after the stop, want it kept at %s\n%s", n, d, v1, table(v))
		}
	}
	if !stopped(v) {
		t.Errorf("the pool did not stay stopped:\n%s", table(v))
	}
	out, err := runStoker(t, "status", "--repo", f.RepoURL, "-o", "wide")
	if err != nil || !strings.Contains(out, api.PoolStateStopped) || !strings.Contains(out, "stopped: 1 of 2 nodes given it") {
		t.Errorf("stoker status -o wide = %v:\n%s", err, out)
	}
	readme, err := f.ReadFile(api.FleetBranch, "README.md")
	if err != nil || !strings.Contains(readme, api.PoolStateStopped) || !strings.Contains(readme, api.ReasonRolloutStopped) {
		t.Errorf("stoker/fleet README.md does not say the rollout stopped (%v):\n%s", err, readme)
	}
	waitSink(t, sink, "RolloutStopped on both receivers", func() bool {
		return sink.count(api.EventRolloutStopped, v2, "") == 1 && sink.slackHas("RolloutStopped", "w-0")
	})

	// Raising the threshold resumes the rollout: everyone but w-0 updates.
	repo2 := map[string]string{"pools/worker.yaml": pool("worker", "2", false, "    stoker.dev/max-failed-percent: \"60\"\n")}
	if _, err := f.Commit("main", repo2, nil, "raise the threshold"); err != nil {
		t.Fatal(err)
	}
	v, err = f.WaitFor(context.Background(), 3*time.Minute, func(v *fleetview.FleetView) bool {
		for _, n := range nodes[1:] {
			if x := nodeOf(v, n); x.State != api.StateDone || x.CurrentConfig != v2 {
				return false
			}
		}
		return true
	}, nil)
	if err != nil {
		t.Fatalf("rollout did not resume after the threshold was raised: %v\n%s", err, table(v))
	}
	if p := poolOf(v, "worker"); p.RolloutStop != nil || p.State == api.PoolStateStopped {
		t.Errorf("pool still stopped at 60%%: %+v", p.RolloutStop)
	}
}
