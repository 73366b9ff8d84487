package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// pdbDrainer stands in for kubedrain against a PodDisruptionBudget: while
// blocked every Drain cordons and returns the PDB's refusal.
type pdbDrainer struct {
	mu        sync.Mutex
	blocked   bool
	cordoned  bool
	drains    int
	uncordons int
}

func (d *pdbDrainer) Drain(context.Context, string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drains++
	d.cordoned = true
	if d.blocked {
		return true, &nodeops.DrainBlockedError{Blocker: "PodDisruptionBudget apps/web", Err: errors.New("cannot evict pod apps/web-0")}
	}
	return true, nil
}

func (d *pdbDrainer) Uncordon(context.Context, string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.uncordons++
	d.cordoned = false
	return nil
}

// TestDrainDeadlineSurvivesRestart: a blocked drain is Working with the PDB
// named, writes nothing and never reboots; after DrainDeadline (counted
// from the first attempt, saved in the state dir, so a restarted agent
// keeps counting) the node is Degraded and the drain still retries, as
// MCO's Controller.drainNode does past DrainTimeoutDuration
// (pkg/controller/drain/drain_controller.go); once the PDB allows, the
// update completes and the cordon is undone.
func TestDrainDeadlineSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, nil) // no policy: files → Reboot, so the plan drains
	d := &pdbDrainer{blocked: true}
	now := time.Unix(1_700_000_000, 0)
	o := e.options()
	o.Drainer, o.DrainDeadline = d, time.Hour
	o.Now = func() time.Time { return now }

	for i := 0; i < 3; i++ {
		_, err := e.runOnce(o) // a fresh agent each time: a restart
		if !errors.Is(err, nodeops.ErrDrainBlocked) {
			t.Fatalf("run %d: %v, want the blocked drain", i, err)
		}
		r := e.report()
		if r.State != api.StateWorking || !strings.Contains(r.Reason, "PodDisruptionBudget apps/web") {
			t.Fatalf("run %d: report %s %q, want Working naming the PDB", i, r.State, r.Reason)
		}
		now = now.Add(20 * time.Minute)
	}
	if e.reboots != 0 || !e.at(nil) {
		t.Fatalf("blocked drain: reboots %d, node untouched %v", e.reboots, e.at(nil))
	}
	st, err := LoadState(e.stateDir)
	must(t, err)
	if !st.DrainStarted.Equal(time.Unix(1_700_000_000, 0)) || !st.Cordoned || st.Stage != StagePlanned {
		t.Fatalf("state = %+v, want the first attempt's time, cordoned, planned", st)
	}

	now = now.Add(time.Minute) // 1h01m after the first attempt
	if _, err := e.runOnce(o); !errors.Is(err, nodeops.ErrDrainBlocked) {
		t.Fatalf("past the deadline: %v", err)
	}
	r := e.report()
	if r.State != api.StateDegraded || !strings.Contains(r.Reason, "not finished after 1h1m0s") || !strings.Contains(r.Reason, "PodDisruptionBudget apps/web") {
		t.Fatalf("past the deadline: report %s %q, want Degraded, still naming the PDB", r.State, r.Reason)
	}
	drains := d.drains

	d.blocked = false
	must(t, e.converge(o))
	if d.drains != drains+1 {
		t.Errorf("drain attempts after the deadline: %d, want one more (still retrying)", d.drains-drains)
	}
	if r := e.report(); r.State != api.StateDone || r.CurrentConfig != c1.Name {
		t.Fatalf("after the PDB allows: report %s %s", r.State, r.CurrentConfig)
	}
	if !e.at(c1) || e.reboots != 1 || d.cordoned || d.uncordons != 1 {
		t.Fatalf("after the PDB allows: at c1 %v, reboots %d, cordoned %v, uncordons %d", e.at(c1), e.reboots, d.cordoned, d.uncordons)
	}
	st, err = LoadState(e.stateDir)
	must(t, err)
	if !st.DrainStarted.IsZero() || st.Cordoned {
		t.Errorf("state after the update = %+v, want no drain and no cordon", st)
	}
}

// TestAbandonedDrainUncordons: a drain blocked by a PDB cordoned the node;
// the config is reverted before it finishes, so the update is abandoned,
// the cordon is undone, and nothing was written.
func TestAbandonedDrainUncordons(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	d := &pdbDrainer{}
	o := e.options()
	o.Drainer = d
	must(t, e.converge(o))

	d.blocked = true
	e.publish(c2, nil, c1)
	if _, err := e.runOnce(o); !errors.Is(err, nodeops.ErrDrainBlocked) {
		t.Fatalf("drain to c2: %v", err)
	}
	if !d.cordoned {
		t.Fatalf("the blocked drain did not cordon")
	}
	e.publish(c1, livePolicy) // revert before the drain finishes
	must(t, e.converge(o))
	if d.cordoned || d.uncordons != 1 {
		t.Fatalf("after abandoning: cordoned %v, uncordons %d; want the cordon undone", d.cordoned, d.uncordons)
	}
	if r := e.report(); r.State != api.StateDone || r.CurrentConfig != c1.Name || !e.at(c1) || e.reboots != 0 {
		t.Fatalf("after abandoning: report %s %s, at c1 %v, reboots %d", r.State, r.CurrentConfig, e.at(c1), e.reboots)
	}
}

// TestRefusesIrreconcilable: a kernelType change, an extensions change and
// a FIPS flag the running kernel does not have are refused before anything
// is drained or written, each naming its field (MCO: checkFIPS and
// reconcilable() in pkg/daemon/update.go).
func TestRefusesIrreconcilable(t *testing.T) {
	e := newEnv(t)
	must(t, os.MkdirAll(filepath.Join(e.root, "proc/sys/crypto"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.root, nodeops.FIPSFile), []byte("0\n"), 0o644))
	for _, tc := range []struct {
		name  string
		edit  func(r *api.Rendered)
		field string
	}{
		{"kernelType", func(r *api.Rendered) { r.KernelType = "realtime" }, "spec.kernelType"},
		{"extensions", func(r *api.Rendered) { r.Extensions = []string{"usbguard"} }, "spec.extensions"},
		{"fips", func(r *api.Rendered) { r.FIPS = true }, "spec.fips"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := *c1
			r.Name = "rendered-worker-" + tc.name
			tc.edit(&r)
			e.publish(&r, nil)
			d := &pdbDrainer{}
			o := e.options()
			o.Drainer = d
			_ = e.converge(o)
			rep := e.report()
			if rep.State != api.StateDegraded || !strings.Contains(rep.Reason, tc.field) || !strings.Contains(rep.Reason, "refusing") {
				t.Fatalf("report %s %q, want Degraded refusing, naming %s", rep.State, rep.Reason, tc.field)
			}
			if d.drains != 0 || !e.at(nil) || e.reboots != 0 {
				t.Fatalf("refused config: drains %d, untouched %v, reboots %d", d.drains, e.at(nil), e.reboots)
			}
		})
	}
}

// TestRefusesUnreconcilablePlan: a change MCO's daemon refuses on a running
// node (isConfigReconcilable: here a directory added) makes the plan
// Unreconcilable; the agent reports Degraded with MCO's reason before it
// drains or writes anything.
func TestRefusesUnreconcilablePlan(t *testing.T) {
	e := newEnv(t)
	r := *c1
	r.Name = "rendered-worker-dir"
	r.Config.Storage.Directories = append(r.Config.Storage.Directories, ign3types.Directory{Node: ign3types.Node{Path: "/etc/newdir"}})
	e.publish(&r, nil)
	d := &pdbDrainer{}
	o := e.options()
	o.Drainer = d
	_ = e.converge(o)
	rep := e.report()
	if rep.State != api.StateDegraded || !strings.Contains(rep.Reason, "unreconcilable: ignition directories section contains changes") {
		t.Fatalf("report %s %q, want Degraded, unreconcilable", rep.State, rep.Reason)
	}
	if d.drains != 0 || !e.at(nil) || e.reboots != 0 {
		t.Fatalf("refused config: drains %d, untouched %v, reboots %d", d.drains, e.at(nil), e.reboots)
	}
}
