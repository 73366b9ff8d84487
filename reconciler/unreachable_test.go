package reconciler

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/fleetview"
)

// TestUnreachableNode drives the hub's clock (no sleeping): a node whose
// last report or heartbeat is older than UnreachableAfter is Unreachable
// in stoker/fleet (state, reason, LAST-SEEN in the README and in `stoker
// status`), counts as unavailable in its pool, and uses maxUnavailable
// capacity as a NotReady node does in MCO (getUnavailableMachines in
// pkg/controller/node/status.go counts nodes whose
// LayeredNodeState.IsUnavailableForUpdate, NotReady included): with
// maxUnavailable 1 and one silent node, a new render advances no one.
// A fresh report brings it back.
func TestUnreachableNode(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"mc/50-x.yaml":      fileMC("50-x", "worker", "/etc/x", "1"),
	})
	e.hub = NewHub(HubConfig{Config: e.hub.cfg.Config, Status: e.hub.cfg.Status, Reports: e.hub.cfg.Reports,
		Now: func() time.Time { return e.now }, UnreachableAfter: 30 * time.Minute})
	e.addNode("w1", "worker")
	e.addNode("w2", "worker")
	current := map[string]string{}
	e.rollout(current, map[string]int{"worker": 1})
	first := current["w1"]
	nodeFleet := func(name string) api.NodeFleet {
		var nf api.NodeFleet
		mustYAML(t, e.readBranch(api.FleetBranch)[api.NodeFile(name)], &nf)
		return nf
	}
	seen := nodeFleet("w2").LastReport
	// Up to 30 minutes of silence from w2 (w1 keeps reporting): still Done.
	for e.now.Add(4*time.Minute).Sub(seen) <= 30*time.Minute {
		e.now = e.now.Add(time.Minute)
		e.report("w1", api.StateDone, current["w1"])
		e.reconcile() // one more minute
	}
	if nf := nodeFleet("w2"); nf.State != api.StateDone {
		t.Fatalf("w2 after %v: %s, want Done", e.now.Sub(seen), nf.State)
	}
	// Quiet: no ref moves, so the hub skips...
	e.reconcile()
	if res := e.reconcile(); !res.Skipped {
		t.Fatalf("quiet reconcile at %v: %+v, want skipped", e.now.Sub(seen), res)
	}
	if nf := nodeFleet("w2"); nf.State != api.StateDone {
		t.Fatalf("w2 after %v: %s, want Done", e.now.Sub(seen), nf.State)
	}
	// ...until the clock alone makes w2 Unreachable, past 30 minutes.
	e.now = seen.Add(30 * time.Minute) // reconcile adds a minute
	res := e.reconcile()
	if res.Skipped || res.FleetCommit == "" {
		t.Fatalf("reconcile at %v of silence: %+v, want a fleet commit", e.now.Sub(seen), res)
	}
	nf := nodeFleet("w2")
	if nf.State != api.StateUnreachable || !strings.Contains(nf.Reason, "no report since "+seen.Format(time.RFC3339)) ||
		!strings.Contains(nf.Reason, "last reported Done") || !nf.LastReport.Equal(seen) {
		t.Fatalf("w2 after %v of silence: %+v, want Unreachable, last seen %s", e.now.Sub(seen), nf, seen)
	}
	var pf api.PoolFleet
	fleet := e.readBranch(api.FleetBranch)
	mustYAML(t, fleet[api.PoolFile("worker")], &pf)
	if pf.UnavailableMachineCount != 1 || pf.ReadyMachineCount != 1 {
		t.Fatalf("worker pool %+v, want 1 unavailable, 1 ready", pf)
	}
	if !strings.Contains(fleet["README.md"], "| LAST-SEEN |") ||
		!strings.Contains(fleet["README.md"], "| w2 | worker | Unreachable | `"+first+"` | `"+first+"` | "+seen.Format(time.RFC3339)+" |") {
		t.Fatalf("README lacks w2's Unreachable row with LAST-SEEN:\n%s", fleet["README.md"])
	}
	v, err := fleetview.ReadFleet(t.Context(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := fleetview.WriteFleet(&b, v, "table", e.now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "LAST-SEEN") || !strings.Contains(b.String(), "Unreachable   "+first+"   "+first+"   31m") {
		t.Fatalf("stoker status table:\n%s", b.String())
	}

	// A new render: w2 uses the pool's only slot, so w1 is not advanced.
	e.push("main", map[string]string{"mc/50-x.yaml": fileMC("50-x", "worker", "/etc/x", "2")})
	e.report("w1", api.StateDone, current["w1"])
	e.reconcile()
	pools, nodes := e.status()
	if pools["worker"].Rendered == first {
		t.Fatal("no new render")
	}
	if nodes["w1"].DesiredConfig != first {
		t.Fatalf("w1 advanced to %s while w2 is Unreachable and maxUnavailable is 1", nodes["w1"].DesiredConfig)
	}
	// w2 reports again: reachable, and the rollout goes on.
	e.report("w2", api.StateDone, current["w2"])
	e.report("w1", api.StateDone, current["w1"])
	e.reconcile()
	if nf := nodeFleet("w2"); nf.State != api.StateDone {
		t.Fatalf("w2 after a fresh report: %s, want Done", nf.State)
	}
	_, nodes = e.status()
	if nodes["w1"].DesiredConfig == first && nodes["w2"].DesiredConfig == first {
		t.Fatal("rollout did not go on once w2 reported again")
	}
}
