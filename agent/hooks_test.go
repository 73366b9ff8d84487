package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// writeHook installs an executable hook (a shell script) on e's host.
func (e *env) writeHook(point, name, body string) string {
	e.t.Helper()
	dir := filepath.Join(e.root, nodeops.HooksDir, point)
	must(e.t, os.MkdirAll(dir, 0o755))
	must(e.t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755))
	return nodeops.HooksDir + "/" + point + "/" + name
}

// hookOptions: e's options with the hooks run from the tree (the test
// root is an offline tree, not a live host to chroot into).
func (e *env) hookOptions() Options {
	o := e.options()
	o.Offline = true
	o.HookTimeout = time.Minute
	return o
}

// TestHooksFailTheUpdate: a failing hook at each point stops the update
// where it is: before-drain with nothing drained or written,
// before-apply with nothing written (the drain undone), before-reboot
// with the applied config rolled back and no reboot, after-reboot with
// --auto-rollback back on the last good config. The report is Degraded,
// names the hook and carries its output.
func TestHooksFailTheUpdate(t *testing.T) {
	tests := []struct {
		point    string
		rollback bool
		reboots  int
		drain    string // the drain log afterwards
	}{
		{nodeops.HookBeforeDrain, false, 0, ""},
		{nodeops.HookBeforeApply, false, 0, "uncordon"},
		{nodeops.HookBeforeReboot, false, 0, "uncordon"},
		{nodeops.HookAfterReboot, true, 2, "uncordon"}, // rebooted back into c1
	}
	for _, tc := range tests {
		t.Run(tc.point, func(t *testing.T) {
			e := newEnv(t)
			e.publish(c1, livePolicy)
			must(t, e.converge(e.hookOptions()))
			hook := e.writeHook(tc.point, "50-check",
				`echo "checking $STOKER_NODE $STOKER_CURRENT_CONFIG -> $STOKER_DESIRED_CONFIG"; echo "service foo is down" >&2; exit 4`+"\n")
			e.publish(c2, nil) // no policy: a Reboot update
			o := e.hookOptions()
			o.AutoRollback = tc.rollback
			if err := e.converge(o); !errors.Is(err, ErrDegraded) {
				t.Fatalf("--once returned %v, want ErrDegraded", err)
			}
			r := e.report()
			if r.State != api.StateDegraded || r.CurrentConfig != c1.Name || !strings.Contains(r.Reason, hook) ||
				!strings.Contains(r.Reason, "service foo is down") {
				t.Fatalf("report %s %s %q, want Degraded at %s naming %s and its last line", r.State, r.CurrentConfig, r.Reason, c1.Name, hook)
			}
			want := "checking n1 " + c1.Name + " -> " + c2.Name + "\nservice foo is down\n"
			if h := r.Hook; h == nil || h.Point != tc.point || h.Hook != hook || h.Config != c2.Name ||
				h.Error != "exit status 4" || h.Output != want {
				t.Fatalf("report hook %+v, want %s exit status 4 with output %q", h, hook, want)
			}
			if !e.at(c1) {
				t.Fatal("node is not at c1")
			}
			if j, _ := nodeops.ReadJournal(e.stateDir); j != nil {
				t.Fatalf("journal left: %+v", j)
			}
			if e.reboots != tc.reboots || e.drainState() != tc.drain {
				t.Fatalf("reboots %d, drain %q; want %d, %q", e.reboots, e.drainState(), tc.reboots, tc.drain)
			}
			// The hook fixed and the failed config put back by the hub (a
			// revert): the node converges and the hook leaves the report.
			must(t, os.Remove(filepath.Join(e.root, hook)))
			e.publish(c1, livePolicy)
			must(t, e.converge(e.hookOptions()))
			if r := e.report(); r.State != api.StateDone || r.Hook != nil {
				t.Fatalf("after the fix: report %s hook %+v", r.State, r.Hook)
			}
		})
	}
}

// TestAfterRebootGateWithoutRollback: without --auto-rollback a failing
// health gate leaves the node on the new config, Degraded with the
// hook's output; the gate runs again on each pass, and once it passes
// the update is committed.
func TestAfterRebootGateWithoutRollback(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	must(t, e.converge(e.hookOptions()))
	flag := filepath.Join(e.root, "healthy")
	hook := e.writeHook(nodeops.HookAfterReboot, "10-health",
		`echo "probe $STOKER_HOOK"; test -e "$STOKER_ROOT/healthy" || { echo unhealthy; exit 1; }`+"\n")
	e.publish(c2, nil)
	if err := e.converge(e.hookOptions()); !errors.Is(err, ErrDegraded) || !strings.Contains(err.Error(), "health gate") {
		t.Fatalf("--once returned %v, want ErrDegraded with the failed health gate", err)
	}
	r := e.report()
	if r.State != api.StateDegraded || r.CurrentConfig != c1.Name || r.DesiredConfig != c2.Name ||
		r.Hook == nil || r.Hook.Hook != hook || r.Hook.Output != "probe after-reboot\nunhealthy\n" {
		t.Fatalf("report %s %s→%s hook %+v", r.State, r.CurrentConfig, r.DesiredConfig, r.Hook)
	}
	if !e.at(c2) || e.reboots != 1 {
		t.Fatalf("at c2 %v, reboots %d: the config must stay", e.at(c2), e.reboots)
	}
	st, err := LoadState(e.stateDir)
	must(t, err)
	if st.Stage != StageRebooting || st.Hook == nil {
		t.Fatalf("state %s hook %+v, want the gate still due", st.Stage, st.Hook)
	}
	// Still failing on the next start: the same, no second reboot.
	if err := e.converge(e.hookOptions()); err == nil {
		t.Fatal("second pass passed a failing gate")
	}
	must(t, os.WriteFile(flag, nil, 0o644))
	must(t, e.converge(e.hookOptions()))
	if r := e.report(); r.State != api.StateDone || r.CurrentConfig != c2.Name || r.Hook != nil || e.reboots != 1 {
		t.Fatalf("after the gate passed: report %s %s hook %+v, reboots %d", r.State, r.CurrentConfig, r.Hook, e.reboots)
	}
}

// TestAfterRebootGateSurvivesCrash: the agent killed after the reboot
// but before its gate ran runs the gate at the next start, and a failing
// gate then still rolls back; killed after a passing gate, before the
// update is committed, it runs the gate again (hooks are idempotent) and
// commits.
func TestAfterRebootGateSurvivesCrash(t *testing.T) {
	tests := []struct {
		crashAt string
		pass    bool
		runs    int
	}{
		{"boot-detected", false, 1},
		{"validated", true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.crashAt, func(t *testing.T) {
			e := newEnv(t)
			e.publish(c1, livePolicy)
			must(t, e.converge(e.hookOptions()))
			exit := "exit 1"
			if tc.pass {
				exit = "exit 0"
			}
			e.writeHook(nodeops.HookAfterReboot, "10-gate", `echo run >> "$STOKER_ROOT/gate-runs"; `+exit+"\n")
			e.publish(c2, nil)
			o := e.hookOptions()
			o.AutoRollback = true
			crashed := false
			o.CrashAt = func(p string) {
				if p == tc.crashAt && e.reboots == 1 && !crashed {
					crashed = true
					panic(crashPanic(p))
				}
			}
			// Boot 1 applies and reboots; boot 2 crashes.
			if _, err := e.runOnce(o); err != nil || e.reboots != 1 {
				t.Fatalf("first run: %v, reboots %d", err, e.reboots)
			}
			if c, _ := e.runOnce(o); c != tc.crashAt {
				t.Fatalf("did not crash at %s", tc.crashAt)
			}
			err := e.converge(o)
			data, _ := os.ReadFile(filepath.Join(e.root, "gate-runs"))
			if n := strings.Count(string(data), "run"); n != tc.runs {
				t.Errorf("the gate ran %d times, want %d", n, tc.runs)
			}
			r := e.report()
			if tc.pass {
				if err != nil || r.State != api.StateDone || r.CurrentConfig != c2.Name || !e.at(c2) {
					t.Fatalf("after the crash: %v, report %s %s", err, r.State, r.CurrentConfig)
				}
				return
			}
			if !errors.Is(err, ErrDegraded) || r.CurrentConfig != c1.Name || r.Hook == nil || r.Hook.Point != nodeops.HookAfterReboot || !e.at(c1) {
				t.Fatalf("after the crash: %v, report %s hook %+v, at c1 %v; want the failed gate rolled back", err, r.CurrentConfig, r.Hook, e.at(c1))
			}
		})
	}
}

// TestBeforeDrainOncePerUpdate: a drain that fails and is retried does
// not run the before-drain hooks again.
func TestBeforeDrainOncePerUpdate(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	must(t, e.converge(e.hookOptions()))
	e.writeHook(nodeops.HookBeforeDrain, "10-count", `echo run >> "$STOKER_ROOT/drain-hook-runs"`+"\n")
	attempts := filepath.Join(t.TempDir(), "attempts")
	o := e.hookOptions()
	// The drain fails twice, then works.
	o.Drainer = &nodeops.ExecDrainer{Command: `echo x >> ` + attempts + `; [ "$STOKER_DRAIN" = uncordon ] || [ $(wc -l < ` + attempts + `) -gt 2 ]`}
	e.publish(c2, nil)
	for i := 0; i < 2; i++ {
		if err := e.converge(o); err == nil || !strings.Contains(err.Error(), "drain") {
			t.Fatalf("run %d: %v, want the failed drain", i, err)
		}
	}
	must(t, e.converge(o))
	if r := e.report(); r.State != api.StateDone || r.CurrentConfig != c2.Name {
		t.Fatalf("report %s %s", r.State, r.CurrentConfig)
	}
	data, _ := os.ReadFile(filepath.Join(e.root, "drain-hook-runs"))
	if n := strings.Count(string(data), "run"); n != 1 {
		t.Errorf("before-drain ran %d times over 3 drain attempts, want 1", n)
	}
}
