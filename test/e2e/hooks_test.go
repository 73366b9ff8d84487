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
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/testutil"
)

// hookMC is a MachineConfig shipping an executable hook script (mode
// 0755) to path: how a pull request adds a node lifecycle hook.
func hookMC(name, role, path, script string) string {
	return testutil.ExecutableFileMC(name, role, path, script)
}

// stokerStatus runs `stoker status --repo ... args...` and returns its
// output.
func stokerStatus(t *testing.T, repo string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, stokerBin, append([]string{"status", "--repo", repo}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("stoker status: %v\n%s", err, out)
	}
	return string(out)
}

const beforeApplyHook = "/etc/stoker/hooks.d/before-apply/50-maintenance-lock"

// TestBeforeApplyHookCancels: a before-apply hook shipped by an earlier
// MachineConfig refuses the next update while a lock file is there:
// nothing is written, the report names the hook and carries its output,
// and stoker/fleet and `stoker status -o wide` show it. With the lock
// gone the retried update goes through.
func TestBeforeApplyHookCancels(t *testing.T) {
	t.Parallel()
	repo := simpleRepo("1", false, "v1")
	repo["machineconfigs/40-hooks.yaml"] = hookMC("40-hooks", "worker", beforeApplyHook,
		"#!/bin/sh\nif [ -e \"$STOKER_ROOT/run/e2e-maintenance.lock\" ]; then\n"+
			"  echo \"$STOKER_HOOK: not updating to $STOKER_DESIRED_CONFIG\"\n  echo \"lock held by db-backup\" >&2\n  exit 1\nfi\n")
	f := newFleet(t, map[string]map[string]string{"main": repo})
	addNodes(t, f, worker("w-0", "a"))
	v := waitConverged(t, f, "", 2*time.Minute)
	old := poolOf(v, "worker").Config
	if fi, err := os.Stat(filepath.Join(f.Root("w-0"), beforeApplyHook)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("hook not shipped with mode 0755: %v %v", fi, err)
	}

	lock := filepath.Join(f.Root("w-0"), "run/e2e-maintenance.lock")
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commit("main", map[string]string{"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2")}, nil, "v2"); err != nil {
		t.Fatal(err)
	}
	r := waitReport(t, f, "w-0", 2*time.Minute, "before-apply hook failure", func(r *api.Report) bool {
		return r.State == api.StateDegraded && r.Hook != nil
	})
	if got := readRoot(t, f, "w-0", e2eFile); got != "v1" {
		t.Errorf("%s = %q: written despite the failing before-apply hook", e2eFile, got)
	}
	h := r.Hook
	if h.Point != "before-apply" || h.Hook != beforeApplyHook || h.Error != "exit status 1" || h.Config == old ||
		h.Output != "before-apply: not updating to "+h.Config+"\nlock held by db-backup\n" {
		t.Errorf("report hook %+v", h)
	}
	if r.CurrentConfig != old || !strings.Contains(r.Reason, beforeApplyHook) || !strings.Contains(r.Reason, "lock held by db-backup") {
		t.Errorf("report current %s reason %q, want %s and the hook named", r.CurrentConfig, r.Reason, old)
	}
	v, err := f.WaitFor(context.Background(), time.Minute, func(v *fleetview.FleetView) bool {
		return nodeOf(v, "w-0").Hook != nil
	}, nil)
	if err != nil {
		t.Fatalf("stoker/fleet does not show the hook: %v\n%s", err, table(v))
	}
	if fh := nodeOf(v, "w-0").Hook; fh.Output != h.Output || fh.Hook != h.Hook {
		t.Errorf("fleet hook %+v, want the report's %+v", fh, h)
	}
	if out := stokerStatus(t, f.RepoURL, "-o", "wide"); !strings.Contains(out, "hook "+beforeApplyHook+" failed on w-0") ||
		!strings.Contains(out, "| lock held by db-backup") {
		t.Errorf("stoker status -o wide does not show the hook and its output:\n%s", out)
	}

	// The lock released: the update is retried (after --retry-failed's
	// default, 10 intervals) and goes through; the hook leaves the report.
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, f, old, 2*time.Minute)
	if got := readRoot(t, f, "w-0", e2eFile); got != "v2" {
		t.Errorf("after the lock was released: %s = %q", e2eFile, got)
	}
	if r, _ := f.Report("w-0"); r == nil || r.Hook != nil {
		t.Errorf("hook still reported after convergence: %+v", r)
	}
}

const afterRebootHook = "/etc/stoker/hooks.d/after-reboot/50-app-health"

// TestAfterRebootGate: an after-reboot health gate (shipped by a
// MachineConfig) fails on the config it gates. The node started with
// --auto-rollback ends back on the last good config (files restored,
// rebooted into it), Degraded with the hook's output; the node without it
// stays on the new config, Degraded with the output.
func TestAfterRebootGate(t *testing.T) {
	t.Parallel()
	repo := simpleRepo("2", false, "v1")
	repo["machineconfigs/60-reboot.yaml"] = fileMC("60-reboot", "worker", "/etc/e2e-reboot.conf", "r1")
	repo["machineconfigs/40-hooks.yaml"] = hookMC("40-hooks", "worker", afterRebootHook,
		"#!/bin/sh\nif grep -q broken \"$STOKER_ROOT/etc/e2e-reboot.conf\"; then\n"+
			"  echo \"app failed its health check after boot into $STOKER_DESIRED_CONFIG\" >&2\n  exit 2\nfi\necho healthy\n")
	f := newFleet(t, map[string]map[string]string{"main": repo})
	// A slower interval for the rolled-back node: it retries the failed
	// config after 10 intervals, and the test reads its files before.
	if _, err := f.AddNode(worker("w-rollback", "a"), "--auto-rollback", "--interval", "6s"); err != nil {
		t.Fatal(err)
	}
	addNodes(t, f, worker("w-stay", "a"))
	v := waitConverged(t, f, "", 3*time.Minute)
	old := poolOf(v, "worker").Config

	if _, err := f.Commit("main", map[string]string{"machineconfigs/60-reboot.yaml": fileMC("60-reboot", "worker", "/etc/e2e-reboot.conf", "broken")}, nil, "break the app"); err != nil {
		t.Fatal(err)
	}
	gateFailed := func(r *api.Report) bool {
		return r.State == api.StateDegraded && r.Hook != nil && r.Hook.Point == "after-reboot"
	}
	rb := waitReport(t, f, "w-rollback", 3*time.Minute, "gate failure rolled back", func(r *api.Report) bool {
		return gateFailed(r) && strings.Contains(r.Reason, "rolled back to "+old)
	})
	if got := readRoot(t, f, "w-rollback", "/etc/e2e-reboot.conf"); got != "r1" {
		t.Errorf("w-rollback: /etc/e2e-reboot.conf = %q after the rollback, want r1", got)
	}
	stay := waitReport(t, f, "w-stay", 3*time.Minute, "gate failure without rollback", gateFailed)
	if got := readRoot(t, f, "w-stay", "/etc/e2e-reboot.conf"); got != "broken" {
		t.Errorf("w-stay: /etc/e2e-reboot.conf = %q, want the new config kept", got)
	}
	for _, r := range []*api.Report{rb, stay} {
		h := r.Hook
		if r.CurrentConfig != old || h.Hook != afterRebootHook || h.Error != "exit status 2" || h.Config == old ||
			h.Output != "app failed its health check after boot into "+h.Config+"\n" || !strings.Contains(r.Reason, "health gate after reboot") {
			t.Errorf("%s: report current %s reason %q hook %+v", r.Node, r.CurrentConfig, r.Reason, h)
		}
	}
	if stay.DesiredConfig == old {
		t.Errorf("w-stay: desired %s, want the new config", stay.DesiredConfig)
	}
	// Rebooted into the new config, then back into the old one: the
	// agent asked for the second reboot and saw it (its state no longer
	// asks for one).
	deadline := time.Now().Add(time.Minute)
	for {
		logData, _ := os.ReadFile(filepath.Join(f.Dir, "logs", "agent-w-rollback.log"))
		st, _ := os.ReadFile(filepath.Join(f.State("w-rollback"), api.AgentStateFile))
		if strings.Contains(string(logData), "rebooting into the last good config after the rollback") &&
			!strings.Contains(string(st), "rebootBack") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("w-rollback did not reboot back into %s; state:\n%s", old, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	v, err := f.WaitFor(context.Background(), time.Minute, func(v *fleetview.FleetView) bool {
		return nodeOf(v, "w-stay").Hook != nil && nodeOf(v, "w-rollback").Hook != nil
	}, nil)
	if err != nil {
		t.Fatalf("stoker/fleet does not show both hooks: %v\n%s", err, table(v))
	}
}

// TestAgentKilledDuringGate: SIGKILL of the agent while its after-reboot
// gate runs leaves the hook running in its own process group; the
// restarted agent kills that orphan, runs the still-pending gate again,
// and commits the update once the gate passes.
func TestAgentKilledDuringGate(t *testing.T) {
	t.Parallel()
	repo := simpleRepo("1", false, "v1")
	repo["machineconfigs/60-reboot.yaml"] = fileMC("60-reboot", "worker", "/etc/e2e-reboot.conf", "r1")
	repo["machineconfigs/40-hooks.yaml"] = hookMC("40-hooks", "worker", afterRebootHook,
		"#!/bin/sh\necho $$ >> \"$STOKER_ROOT/run/e2e-gate.pids\"\n"+
			"while [ ! -e \"$STOKER_ROOT/run/e2e-gate.ok\" ]; do sleep 0.1; done\necho healthy\n")
	f := newFleet(t, map[string]map[string]string{"main": repo})
	run := filepath.Join(f.Root("w-0"), "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(run, "e2e-gate.ok")
	if err := os.WriteFile(ok, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	addNodes(t, f, worker("w-0", "a"))
	v := waitConverged(t, f, "", 2*time.Minute)
	old := poolOf(v, "worker").Config
	pids := func() []string {
		data, _ := os.ReadFile(filepath.Join(run, "e2e-gate.pids"))
		return strings.Fields(string(data))
	}
	before := len(pids()) // the gate of the first rollout ran and passed
	if err := os.Remove(ok); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commit("main", map[string]string{"machineconfigs/60-reboot.yaml": fileMC("60-reboot", "worker", "/etc/e2e-reboot.conf", "r2")}, nil, "r2"); err != nil {
		t.Fatal(err)
	}
	waitFile := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: gate pids %v", what, pids())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFile("the gate never ran after the reboot", func() bool { return len(pids()) == before+1 })
	// The agent records the running hook right after starting it; a kill
	// in between (a few milliseconds) would leave an orphan it cannot
	// know of (under systemd, KillMode=control-group kills it anyway).
	waitFile("the running gate was not recorded", func() bool {
		_, err := os.Stat(filepath.Join(f.State("w-0"), "hook.pid"))
		return err == nil
	})
	orphan := pids()[before]
	f.Agent("w-0").Kill()
	if !procAlive(orphan) {
		t.Fatalf("the gate %s died with the agent: the test shows nothing", orphan)
	}
	t.Logf("killed the agent while its gate (pid %s) ran", orphan)
	if _, err := f.StartAgent("w-0"); err != nil {
		t.Fatal(err)
	}
	waitFile("the restarted agent did not run the gate again", func() bool { return len(pids()) == before+2 })
	waitFile("the orphaned gate was not killed", func() bool { return !procAlive(orphan) })
	if r, err := f.Report("w-0"); err != nil || r.CurrentConfig != old {
		t.Fatalf("committed before the gate passed: %+v %v", r, err)
	}
	if err := os.WriteFile(ok, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, f, old, 2*time.Minute)
	if got := readRoot(t, f, "w-0", "/etc/e2e-reboot.conf"); got != "r2" {
		t.Errorf("/etc/e2e-reboot.conf = %q, want r2", got)
	}
}

// procAlive: the process exists and is not a zombie.
func procAlive(pid string) bool {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestBeforeHooksOfRebootUpdates: a failing before-drain hook cancels a
// Reboot update with nothing written; a failing before-reboot hook rolls
// the applied files back and the node does not reboot. Both report the
// hook and its output, Degraded on the old config.
func TestBeforeHooksOfRebootUpdates(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"before-drain", "before-reboot"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			hook := "/etc/stoker/hooks.d/" + point + "/50-lock"
			repo := simpleRepo("1", false, "v1")
			repo["machineconfigs/60-reboot.yaml"] = fileMC("60-reboot", "worker", "/etc/e2e-reboot.conf", "r1")
			repo["machineconfigs/40-hooks.yaml"] = hookMC("40-hooks", "worker", hook,
				"#!/bin/sh\n[ -e \"$STOKER_ROOT/run/e2e.lock\" ] || exit 0\necho \"$STOKER_HOOK refused by e2e.lock\" >&2\nexit 7\n")
			f := newFleet(t, map[string]map[string]string{"main": repo})
			addNodes(t, f, worker("w-0", "a"))
			v := waitConverged(t, f, "", 2*time.Minute)
			old := poolOf(v, "worker").Config
			r0, err := f.Report("w-0")
			if err != nil {
				t.Fatal(err)
			}
			lock := filepath.Join(f.Root("w-0"), "run/e2e.lock")
			if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(lock, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Commit("main", map[string]string{"machineconfigs/60-reboot.yaml": fileMC("60-reboot", "worker", "/etc/e2e-reboot.conf", "r2")}, nil, "r2"); err != nil {
				t.Fatal(err)
			}
			r := waitReport(t, f, "w-0", 2*time.Minute, point+" failure", func(r *api.Report) bool {
				return r.State == api.StateDegraded && r.Hook != nil
			})
			if h := r.Hook; h.Point != point || h.Hook != hook || h.Error != "exit status 7" || h.Output != point+" refused by e2e.lock\n" ||
				r.CurrentConfig != old || !strings.Contains(r.Reason, hook) {
				t.Errorf("report current %s reason %q hook %+v", r.CurrentConfig, r.Reason, h)
			}
			if got := readRoot(t, f, "w-0", "/etc/e2e-reboot.conf"); got != "r1" {
				t.Errorf("/etc/e2e-reboot.conf = %q, want r1 (nothing written, or rolled back)", got)
			}
			if r.BootID != r0.BootID {
				t.Errorf("boot id %s → %s: the node rebooted", r0.BootID, r.BootID)
			}
			if point == "before-reboot" && !strings.Contains(r.Reason, "rolled back to "+old) {
				t.Errorf("reason %q does not say it rolled back", r.Reason)
			}
		})
	}
}
