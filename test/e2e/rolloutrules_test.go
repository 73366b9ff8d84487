//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/reconciler/fleetview"
)

// windowAnnotations: Saturdays 02:00 Europe/Berlin for two hours.
const windowAnnotations = "    stoker.dev/maintenance-window: \"0 2 * * 6\"\n" +
	"    stoker.dev/maintenance-window-duration: 2h\n" +
	"    stoker.dev/maintenance-window-time-zone: Europe/Berlin\n"

// rebootFile is outside /etc/e2e, so changing it reboots (MCO's default).
const rebootFile = "/etc/stoker-e2e/kernel-tuning.conf"

// TestMaintenanceWindow (issue 21): with the hub's clock outside the
// pool's window, a change that needs no reboot still rolls out, a change
// that reboots waits (stoker/fleet and `stoker status` say when the window
// opens) and no node takes it; with the clock inside the window, it
// proceeds. The clock is the hub's hidden --test-clock-start.
func TestMaintenanceWindow(t *testing.T) {
	t.Parallel()
	f := newFleetNoHub(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	// Saturday 01:00 in Berlin: the window opens in an hour.
	hub, err := f.StartHub("--test-clock-start", "2026-03-14T01:00:00+01:00")
	if err != nil {
		t.Fatal(err)
	}
	addNodes(t, f, worker("w-0", "a"), worker("w-1", "b"))
	v := waitConverged(t, f, "", 2*time.Minute)

	// The window lands with a change that needs no reboot: it goes now.
	v1 := poolOf(v, "worker").Config
	if _, err := f.Commit("main", map[string]string{
		"pools/worker.yaml":          pool("worker", "1", false, windowAnnotations),
		"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2"),
	}, nil, "worker: maintenance window; v2 (no reboot)"); err != nil {
		t.Fatal(err)
	}
	v = waitConverged(t, f, v1, 2*time.Minute)
	if w := poolOf(v, "worker").Window; w == nil || w.Open || w.Opens == nil || w.Opens.Format(time.RFC3339) != "2026-03-14T02:00:00+01:00" {
		t.Fatalf("fleet window %+v, want closed and opening 2026-03-14T02:00:00+01:00", w)
	}
	for _, n := range []string{"w-0", "w-1"} {
		if got := readRoot(t, f, n, e2eFile); got != "v2" {
			t.Errorf("%s: non-disruptive change held by the window: %s = %q", n, e2eFile, got)
		}
	}

	// A change that reboots waits for the window.
	v2 := poolOf(v, "worker").Config
	if _, err := f.Commit("main", map[string]string{
		"machineconfigs/60-reboot.yaml": fileMC("60-reboot", "worker", rebootFile, "vm.swappiness = 10"),
	}, nil, "worker: kernel tuning (reboots)"); err != nil {
		t.Fatal(err)
	}
	v, err = f.WaitFor(context.Background(), 2*time.Minute, func(v *fleetview.FleetView) bool {
		p := poolOf(v, "worker")
		return p.Config != v2 && strings.Contains(nodeOf(v, "w-0").Waiting, "maintenance window") &&
			strings.Contains(nodeOf(v, "w-1").Waiting, "maintenance window")
	}, nil)
	if err != nil {
		t.Fatalf("nodes not shown waiting for the window: %v\n%s", err, table(v))
	}
	v3 := poolOf(v, "worker").Config
	out, err := exec.Command(stokerBin, "status", "--repo", f.RepoURL).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `pool worker: maintenance window "0 2 * * 6" for 2h0m0s (Europe/Berlin), disruptive updates: closed, opens 2026-03-14T02:00:00+01:00`) ||
		!strings.Contains(string(out), "waiting for the maintenance window (opens 2026-03-14T02:00:00+01:00)") {
		t.Errorf("stoker status does not say when the window opens (%v):\n%s", err, out)
	}
	time.Sleep(8 * interval) // several hub and agent rounds
	v, _ = f.Status(context.Background())
	for _, n := range []string{"w-0", "w-1"} {
		if _, err := os.Stat(filepath.Join(f.Root(n), rebootFile)); err == nil {
			t.Errorf("%s rebooted into the change outside the window", n)
		}
		if got := nodeOf(v, n); got.DesiredConfig != v2 || got.CurrentConfig != v2 {
			t.Errorf("%s: desired %s current %s outside the window, want both %s", n, got.DesiredConfig, got.CurrentConfig, v2)
		}
	}

	// 02:30 in Berlin: inside the window, the rollout proceeds.
	hub.Stop()
	if _, err := f.StartHub("--test-clock-start", "2026-03-14T02:30:00+01:00"); err != nil {
		t.Fatal(err)
	}
	v, err = f.WaitFor(context.Background(), 3*time.Minute, func(v *fleetview.FleetView) bool {
		return poolOf(v, "worker").Config == v3 && demo.Converged(v) && len(v.Nodes) == 2
	}, nil)
	if err != nil {
		t.Fatalf("no rollout inside the window: %v\n%s", err, table(v))
	}
	if w := poolOf(v, "worker").Window; w == nil || !w.Open || w.Closes == nil || w.Closes.Format(time.RFC3339) != "2026-03-14T04:00:00+01:00" {
		t.Errorf("fleet window %+v, want open until 04:00", w)
	}
	for _, n := range []string{"w-0", "w-1"} {
		if got := readRoot(t, f, n, rebootFile); got != "vm.swappiness = 10" {
			t.Errorf("%s: %s = %q after the window opened", n, rebootFile, got)
		}
	}
}

// TestHoldsAndOrder (issue 21): nodes held in .stoker/rollout.yaml are not
// updated while the others are, in the file's order (w-2 before w-0, where
// zone-then-age says w-0 first); once the hold is removed, the held node
// updates too.
func TestHoldsAndOrder(t *testing.T) {
	t.Parallel()
	f := newFleet(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	addNodes(t, f, worker("w-0", "a"), worker("w-1", "b"), worker("w-2", "c"))
	v := waitConverged(t, f, "", 2*time.Minute)
	v1 := poolOf(v, "worker").Config

	if _, err := f.Commit("main", map[string]string{
		".stoker/rollout.yaml":       "holds:\n  - node: w-1\n    reason: disk replacement (INC-1234)\norder:\n  nodes: [w-2, w-0]\n",
		"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2"),
	}, nil, "hold w-1, w-2 first; v2"); err != nil {
		t.Fatal(err)
	}
	done := func(v *fleetview.FleetView, n, cfg string) bool {
		x := nodeOf(v, n)
		return x.State == api.StateDone && x.CurrentConfig == cfg && x.DesiredConfig == cfg
	}
	v, err := f.WaitFor(context.Background(), 3*time.Minute, func(v *fleetview.FleetView) bool {
		c := poolOf(v, "worker").Config
		return c != v1 && done(v, "w-0", c) && done(v, "w-2", c) &&
			strings.HasPrefix(nodeOf(v, "w-1").Waiting, "held in .stoker/rollout.yaml: disk replacement")
	}, nil)
	if err != nil {
		t.Fatalf("the others did not update around the hold: %v\n%s", err, table(v))
	}
	v2 := poolOf(v, "worker").Config
	if held := poolOf(v, "worker").Held; len(held) != 1 || held[0] != "w-1" {
		t.Errorf("fleet pool held %v, want [w-1]", held)
	}
	time.Sleep(8 * interval)
	if got := readRoot(t, f, "w-1", e2eFile); got != "v1" {
		t.Errorf("held w-1 updated: %s = %q", e2eFile, got)
	}
	// The order, from the hub's own rollout commits on stoker/status.
	git := gitWork(t, f)
	git("fetch", "--quiet", "origin", api.StatusBranch)
	var order []string
	for _, line := range strings.Split(git("log", "--reverse", "--format=%B", "FETCH_HEAD"), "\n") {
		if rest, ok := strings.CutPrefix(line, "rollout worker → "+v2+": "); ok && !strings.Contains(rest, " (+") {
			order = append(order, strings.Split(rest, ", ")...)
		}
	}
	if strings.Join(order, ",") != "w-2,w-0" {
		t.Errorf("rollout order %v, want [w-2 w-0]", order)
	}

	if _, err := f.Commit("main", map[string]string{".stoker/rollout.yaml": "# no holds\n"}, nil, "release w-1"); err != nil {
		t.Fatal(err)
	}
	v, err = f.WaitFor(context.Background(), 2*time.Minute, func(v *fleetview.FleetView) bool { return done(v, "w-1", v2) }, nil)
	if err != nil {
		t.Fatalf("w-1 not updated after its hold was removed: %v\n%s", err, table(v))
	}
	if got := readRoot(t, f, "w-1", e2eFile); got != "v2" {
		t.Errorf("w-1: %s = %q after the hold", e2eFile, got)
	}
}
