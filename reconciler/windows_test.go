package reconciler

import (
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
)

// windowPool is the worker pool with a maintenance window: daily at 02:00
// Europe/Berlin for an hour.
func windowPool(maxUnavailable string) string {
	return strings.Replace(workerPool(false, 1), "  name: worker\n", "  name: worker\n  annotations:\n"+
		"    stoker.dev/maintenance-window: \"0 2 * * *\"\n"+
		"    stoker.dev/maintenance-window-duration: 1h\n"+
		"    stoker.dev/maintenance-window-time-zone: Europe/Berlin\n", 1)
}

func (e *fleetEnv) fleetPool(name string) api.PoolFleet {
	e.t.Helper()
	var pf api.PoolFleet
	mustYAML(e.t, e.readBranch(api.FleetBranch)["pools/"+name+".yaml"], &pf)
	return pf
}

func (e *fleetEnv) fleetNode(name string) api.NodeFleet {
	e.t.Helper()
	var nf api.NodeFleet
	mustYAML(e.t, e.readBranch(api.FleetBranch)[api.NodeFile(name)], &nf)
	return nf
}

// TestHubMaintenanceWindow: a disruptive change waits while the window is
// closed (stoker/fleet says so and when it opens), the window opening is
// enough to reconcile (no ref moves), and the rollout then proceeds.
func TestHubMaintenanceWindow(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": windowPool("1"),
		"mc/50-a.yaml":      fileMC("50-a", "worker", "/etc/a.conf", "v1"),
	})
	// 01:59 UTC = 02:59 CET on 2026-03-01, inside the window.
	e.now = time.Date(2026, 3, 1, 1, 58, 0, 0, time.UTC)
	e.addNode("w-0", "worker")
	cur := map[string]string{}
	e.reconcile()
	e.converge(cur)
	if cur["w-0"] == "" {
		t.Fatal("first config not given inside the window")
	}
	old := cur["w-0"]
	e.now = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) // closed
	e.push("main", map[string]string{"mc/50-a.yaml": fileMC("50-a", "worker", "/etc/a.conf", "v2")})
	e.report("w-0", api.StateDone, old)
	if res := e.reconcile(); len(res.Steps) != 0 {
		t.Fatalf("a reboot went out outside the window: %v", res.Steps)
	}
	pf := e.fleetPool("worker")
	if pf.Window == nil || pf.Window.Open || pf.Window.Opens == nil || pf.Window.Opens.Format(time.RFC3339) != "2026-03-02T02:00:00+01:00" {
		t.Fatalf("fleet window %+v, want closed, opening 2026-03-02T02:00:00+01:00", pf.Window)
	}
	if w := e.fleetNode("w-0").Waiting; !strings.Contains(w, "waiting for the maintenance window (opens 2026-03-02T02:00:00+01:00)") {
		t.Errorf("node waiting %q", w)
	}
	e.now = time.Date(2026, 3, 2, 0, 50, 0, 0, time.UTC)
	e.report("w-0", api.StateDone, old) // a fresh heartbeat, else Unreachable
	for i := 0; ; i++ {
		res := e.reconcile()
		if len(res.Steps) != 0 {
			t.Fatalf("still closed: steps %v", res.Steps)
		}
		if res.Skipped {
			break
		}
		if i == 3 {
			t.Fatal("still closed and nothing changed, yet the hub does not settle")
		}
	}
	e.now = time.Date(2026, 3, 2, 0, 59, 0, 0, time.UTC)
	res := e.reconcile() // at 01:00 UTC = 02:00 CET: opens, though no ref moved
	if len(res.Steps) != 1 || res.Steps[0].Node != "w-0" {
		t.Fatalf("window opened, steps %v", res.Steps)
	}
	if pf := e.fleetPool("worker"); pf.Window == nil || !pf.Window.Open || pf.Window.Closes.Format(time.RFC3339) != "2026-03-02T03:00:00+01:00" {
		t.Errorf("fleet window %+v, want open until 03:00", pf.Window)
	}
}

// TestHubHoldsAndOrder: a held node is not updated while the others are,
// then is once the hold is removed; the order file decides who goes
// first; a broken file moves nothing and says so with file and field.
func TestHubHoldsAndOrder(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml":    workerPool(false, 1),
		"mc/50-a.yaml":         fileMC("50-a", "worker", "/etc/a.conf", "v1"),
		".stoker/rollout.yaml": "holds:\n- node: w-1\n  reason: disk swap\norder:\n  nodes: [w-2, w-0]\n",
	})
	for _, n := range []string{"w-0", "w-1", "w-2"} {
		e.addNode(n, "worker")
	}
	cur := map[string]string{}
	var order []string
	for i := 0; i < 10; i++ {
		res := e.reconcile()
		for _, s := range res.Steps {
			order = append(order, s.Node)
		}
		if len(e.converge(cur)) == 0 && len(res.Steps) == 0 {
			break
		}
	}
	if strings.Join(order, ",") != "w-2,w-0" {
		t.Fatalf("rollout order %v, want w-2, w-0 (w-1 held)", order)
	}
	if cur["w-1"] != "" {
		t.Fatalf("held w-1 got %s", cur["w-1"])
	}
	if w := e.fleetNode("w-1").Waiting; w != "held in .stoker/rollout.yaml: disk swap" {
		t.Errorf("w-1 waiting %q", w)
	}
	if pf := e.fleetPool("worker"); strings.Join(pf.Held, ",") != "w-1" {
		t.Errorf("pool held %v", pf.Held)
	}

	e.push("main", map[string]string{".stoker/rollout.yaml": "hold:\n- node: w-1\n"})
	if res := e.reconcile(); len(res.Steps) != 0 {
		t.Fatalf("a broken rollout.yaml let %v move", res.Steps)
	}
	if pf := e.fleetPool("worker"); len(pf.Errors) == 0 || pf.Errors[0].File != ".stoker/rollout.yaml" || !strings.Contains(pf.Errors[0].Message, `unknown field "hold"`) {
		t.Errorf("fleet errors %v", pf.Errors)
	}

	e.push("main", map[string]string{".stoker/rollout.yaml": "# no holds\n"})
	res := e.reconcile()
	if len(res.Steps) != 1 || res.Steps[0].Node != "w-1" {
		t.Fatalf("hold removed: steps %v", res.Steps)
	}
}
