package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"stoker.dev/stoker/api"
)

func fleetPool(e *fleetEnv, name string) api.PoolFleet {
	e.t.Helper()
	var p api.PoolFleet
	mustYAML(e.t, e.readBranch(api.FleetBranch)[api.PoolFile(name)], &p)
	return p
}

func cond(t *testing.T, p api.PoolFleet, typ string) metav1.Condition {
	t.Helper()
	c := p.PoolCondition(typ)
	if c == nil {
		t.Fatalf("pool %s has no %s condition: %+v", p.Name, typ, p.Conditions)
	}
	return *c
}

// TestPoolConditionsSourceInvalid: an invalid commit on main leaves every
// pool "source invalid" (never "paused"), with MCO's conditions (as
// calculateStatus in MCO's pkg/controller/node/status.go sets them:
// Degraded when RenderDegraded, Updating false) carrying reason, message
// and a lastTransitionTime that holds while the status does; the log
// names each error with its file and field.
func TestPoolConditionsSourceInvalid(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"mc/50-x.yaml":      fileMC("50-x", "worker", "/etc/x", "1"),
	})
	log, hook := logtest.NewNullLogger()
	e.hub.cfg.Log = log
	e.addNode("w1", "worker")
	e.reconcile()
	_, nodes := e.status()
	e.report("w1", api.StateDone, nodes["w1"].DesiredConfig)
	e.reconcile()
	good := fleetPool(e, "worker")
	if good.State != "" || !good.Updated || cond(t, good, api.PoolUpdated).Status != metav1.ConditionTrue ||
		cond(t, good, api.PoolRenderDegraded).Status != metav1.ConditionFalse {
		t.Fatalf("a converged pool: %+v", good)
	}
	since := cond(t, good, api.PoolUpdated).LastTransitionTime

	e.push("main", map[string]string{"mc/70-bad.yaml": fileMC("70-bad", "worker", "/usr/bin/evil", "x")})
	e.reconcile()
	bad := fleetPool(e, "worker")
	rd := cond(t, bad, api.PoolRenderDegraded)
	if bad.State != api.PoolStateSourceInvalid || bad.Paused || bad.Updating || !bad.Degraded ||
		rd.Status != metav1.ConditionTrue || rd.Reason != api.ReasonSourceInvalid || !strings.Contains(rd.Message, "mc/70-bad.yaml") ||
		!rd.LastTransitionTime.Time.Equal(e.now) ||
		cond(t, bad, api.PoolDegraded).Reason != api.ReasonRenderDegraded {
		t.Fatalf("pool after an invalid commit on main: %+v", bad)
	}
	if u := cond(t, bad, api.PoolUpdated); u.Status != metav1.ConditionTrue || !u.LastTransitionTime.Equal(&since) {
		t.Fatalf("Updated must keep its lastTransitionTime %v while it holds: %+v", since, u)
	}
	readme := e.readBranch(api.FleetBranch)["README.md"]
	if strings.Contains(readme, "(paused)") || !strings.Contains(readme, "| source invalid |") ||
		!strings.Contains(readme, "| worker | RenderDegraded | True | SourceInvalid |") {
		t.Fatalf("README:\n%s", readme)
	}
	var logged bool
	for _, en := range hook.AllEntries() {
		if en.Level == logrus.WarnLevel && strings.Contains(en.Message, "mc/70-bad.yaml: spec.config.storage.files[0].path") &&
			en.Data["path"] == "mc/70-bad.yaml" {
			logged = true
		}
	}
	if !logged {
		t.Fatalf("the log does not name the validation error: %v", messages(hook))
	}

	// Paused while the source is valid: "paused".
	e.push("main", map[string]string{"pools/worker.yaml": workerPool(true, 1)}, "mc/70-bad.yaml")
	e.reconcile()
	paused := fleetPool(e, "worker")
	if paused.State != api.PoolStatePaused || !paused.Paused || cond(t, paused, api.PoolRenderDegraded).Status != metav1.ConditionFalse ||
		!cond(t, paused, api.PoolRenderDegraded).LastTransitionTime.Time.Equal(e.now) {
		t.Fatalf("paused pool: %+v", paused)
	}
}

// TestMissingSourceBranchLogged: a pool whose source branch does not
// exist is RenderDegraded with reason SourceBranchMissing, and the hub
// says so in its log.
func TestMissingSourceBranchLogged(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"pools/canary.yaml": canaryPool,
		"mc/50-x.yaml":      fileMC("50-x", "worker", "/etc/x", "1"),
	})
	log, hook := logtest.NewNullLogger()
	e.hub.cfg.Log = log
	e.reconcile()
	p := fleetPool(e, "worker-canary")
	if c := cond(t, p, api.PoolRenderDegraded); c.Reason != api.ReasonSourceBranchMissing || p.State != api.PoolStateSourceInvalid {
		t.Fatalf("pool with a missing source branch: %+v", p)
	}
	for _, en := range hook.AllEntries() {
		if strings.Contains(en.Message, "renders from branch canary, which does not exist") && en.Data["pool"] == "worker-canary" {
			return
		}
	}
	t.Fatalf("missing source branch not logged: %v", messages(hook))
}

// TestFleetNodesNotDone: a node that never applied a config, and one that
// two custom pools claim, are not Done on stoker/fleet (MCO's
// isNodeManaged: no current config, not managed), whatever their agent
// reports; the README's pool table repeats no column name.
func TestFleetNodesNotDone(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"pools/a.yaml":      strings.ReplaceAll(strings.ReplaceAll(canaryPool, "worker-canary", "a"), "    stoker.dev/source-branch: canary\n", ""),
		"pools/b.yaml":      strings.ReplaceAll(strings.ReplaceAll(canaryPool, "worker-canary", "b"), "    stoker.dev/source-branch: canary\n", ""),
		"mc/50-x.yaml":      fileMC("50-x", "worker", "/etc/x", "1"),
	})
	e.addNode("both", "worker", "a", "b")
	e.addNode("fresh", "worker")
	e.reconcile()
	fleet := e.readBranch(api.FleetBranch)
	for _, n := range []string{"both", "fresh"} {
		var nf api.NodeFleet
		mustYAML(t, fleet[api.NodeFile(n)], &nf)
		if nf.State == api.StateDone || (nf.Reason == "" && nf.Error == "") {
			t.Fatalf("%s reports Done but is not managed: %+v", n, nf)
		}
	}
	readme := fleet["README.md"]
	for _, line := range strings.Split(readme, "\n") {
		if !strings.HasPrefix(line, "| NAME") && !strings.HasPrefix(line, "| POOL") {
			continue
		}
		seen := map[string]bool{}
		for _, col := range strings.Split(strings.Trim(line, "| "), " | ") {
			if seen[col] {
				t.Fatalf("README header repeats %s: %s", col, line)
			}
			seen[col] = true
		}
	}
	if strings.Contains(readme, "| both | - | Done") || strings.Contains(readme, "| fresh | worker | Done") {
		t.Fatalf("README shows an unmanaged node Done:\n%s", readme)
	}
}

func messages(h *logtest.Hook) []string {
	var out []string
	for _, en := range h.AllEntries() {
		out = append(out, en.Message)
	}
	return out
}

var _ = time.Second

// TestHubWatches: the webhook's branch filter is the default branch, the
// pools' source branches as of the last render, previews and the hub's
// and reports' branches.
func TestHubWatches(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"pools/canary.yaml": canaryPool,
		"mc/50-x.yaml":      fileMC("50-x", "worker", "/etc/x", "1"),
	})
	e.hub.cfg.Previews = []string{"preview/*"}
	e.reconcile()
	for b, want := range map[string]bool{"main": true, "canary": true, "preview/a": true, "stoker/reports/w1": true,
		"feature": false, "stoker/preview/x": false} {
		if got := e.hub.Watches(b); got != want {
			t.Errorf("Watches(%q) = %v, want %v", b, got, want)
		}
	}
}
