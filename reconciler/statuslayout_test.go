package reconciler

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/rollout"
)

// TestHubRolloutCanaryLayout2 is TestHubRolloutCanaryPauseAndBadCommit
// with stoker/status in layout 2: the same rollouts, pauses and refusals.
func TestHubRolloutCanaryLayout2(t *testing.T) {
	testHubRolloutCanary(t, StatusLayout2)
}

// TestHubStatusLayoutTransition: by default the hub writes layout 1 with
// layout 2's files beside nodes/ while any live agent does not say it
// reads layout 2 (agent.yaml on its report branch), switches to layout 2
// (no nodes/) once all do, and goes back when an agent that reads only
// layout 1 reports again. Every node's target is the same in every form.
func TestHubStatusLayoutTransition(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"mc/10-a.yaml":      fileMC("10-a", "worker", "/etc/a", "one"),
	})
	for _, n := range []string{"w1", "w2", "w3"} {
		e.addNode(n, "worker")
	}
	current := map[string]string{}
	e.rollout(current, map[string]int{"worker": 1})
	check := func(step string, version int) {
		t.Helper()
		files := e.readBranch(api.StatusBranch)
		if got := files[api.LayoutFile]; got != string(api.LayoutMarker(version)) {
			t.Fatalf("%s: %s = %q, want version %d", step, api.LayoutFile, got, version)
		}
		_, hasNodes := files[api.NodeFile("w1")]
		_, hasCursor := files[api.RolloutCursorFile("worker")]
		if hasNodes != (version == 1) || !hasCursor {
			t.Fatalf("%s: nodes/ present %v, cursor present %v; want nodes/ only in version 1 and the cursor always", step, hasNodes, hasCursor)
		}
		_, nodes := e.status()
		for _, n := range []string{"w1", "w2", "w3"} {
			if nodes[n].DesiredConfig != current[n] || nodes[n].Pool != "worker" {
				t.Fatalf("%s: node %s target %+v, want %s in pool worker", step, n, nodes[n], current[n])
			}
		}
	}
	check("agents before layout 2", 1)

	e.agentVersion = "v2"
	e.agentInfo = &api.AgentInfo{AgentVersion: "v2", StatusLayouts: api.StatusLayouts}
	for _, n := range []string{"w1", "w2"} {
		e.report(n, api.StateDone, current[n])
	}
	e.reconcile()
	check("one agent still reads only layout 1", 1)
	e.report("w3", api.StateDone, current["w3"])
	if res := e.reconcile(); res.StatusCommit == "" {
		t.Fatal("every agent reads layout 2, but the hub did not rewrite stoker/status")
	}
	check("every agent reads layout 2", 2)

	// A rollout in layout 2 converges as before.
	e.push("main", map[string]string{"mc/10-a.yaml": fileMC("10-a", "worker", "/etc/a", "two")})
	e.rollout(current, map[string]int{"worker": 1})
	check("rolled out in layout 2", 2)

	// An agent that reads only layout 1 (e.g. reinstalled from an old
	// image) reports; it does not write agent.yaml, so the one there is
	// stale (another agent version): layout 1 comes back.
	e.agentInfo, e.agentVersion = nil, "v1"
	e.report("w2", api.StateDone, current["w2"])
	e.reconcile()
	check("an old agent reported", 1)
}

// TestEncodeRolloutsStepsMoveOnlyTheCursor plays a rollout of 300 nodes
// planned by rollout.PlanRollout, 7 at a time, with some nodes unavailable
// (skipped by the planner), and checks after every step that the order is
// the one written when the target changed, the cursor has at most
// api.HubRolloutExceptions exceptions, and decoding gives every node's
// target exactly.
func TestEncodeRolloutsStepsMoveOnlyTheCursor(t *testing.T) {
	const n = 300
	members := make([]rollout.PlanNode, n)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range members {
		members[i] = rollout.PlanNode{Name: fmt.Sprintf("node-%03d", i), Ready: true, Desired: "rendered-worker-a",
			Labels:  map[string]string{api.ZoneLabel: fmt.Sprintf("zone-%d", i%3)},
			Created: base.Add(time.Duration(n-i) * time.Minute),
			Report:  &api.Report{State: api.StateDone, CurrentConfig: "rendered-worker-a"}}
	}
	// Three nodes are Degraded: the planner advances them out of turn
	// (they cost no capacity).
	for _, i := range []int{17, 140, 299} {
		members[i].Report.State = api.StateDegraded
	}
	seven := intstr.FromInt32(7)
	pool := rollout.PlanPool{Name: "worker", Target: "rendered-worker-b", MaxUnavailable: &seven}
	var prev map[string]*api.PoolRollout
	var order []byte
	for step := 0; ; step++ {
		steps, err := rollout.PlanRollout(pool, members)
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) == 0 {
			break
		}
		advanced := map[string]bool{}
		for _, s := range steps {
			advanced[s.Node] = true
		}
		nodes := map[string]api.NodeTarget{}
		for i := range members {
			m := &members[i]
			if advanced[m.Name] {
				m.Desired = pool.Target
			}
			nodes[m.Name] = api.NodeTarget{Name: m.Name, Pool: "worker", DesiredConfig: m.Desired}
		}
		var rank []string
		for _, m := range rollout.Order(pool, members) {
			rank = append(rank, m.Name)
		}
		got := encodeRollouts(nodes, map[string]string{"worker": pool.Target}, map[string][]string{"worker": rank}, prev)
		files := map[string][]byte{}
		if err := rolloutFiles(got, files); err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			order = files[api.RolloutOrderFile("worker")]
		} else if string(files[api.RolloutOrderFile("worker")]) != string(order) {
			t.Fatalf("step %d rewrote the order", step)
		}
		r := got["worker"]
		if len(r.Cursor.Except) > api.HubRolloutExceptions {
			t.Fatalf("step %d: %d exceptions", step, len(r.Cursor.Except))
		}
		if dec := r.Targets(); !maps.Equal(dec, nodes) {
			t.Fatalf("step %d: decoded targets differ from the plan", step)
		}
		if c := len(files[api.RolloutCursorFile("worker")]); c > 400 {
			t.Fatalf("step %d: cursor is %d bytes:\n%s", step, c, files[api.RolloutCursorFile("worker")])
		}
		prev = got
		// The advanced nodes finish (Degraded ones stay Degraded).
		for i := range members {
			if members[i].Desired == pool.Target && members[i].Report.State == api.StateDone {
				members[i].Report.CurrentConfig = pool.Target
			}
		}
	}
	for _, m := range members {
		if m.Desired != pool.Target {
			t.Fatalf("node %s never advanced", m.Name)
		}
	}
	// A new target writes a new order.
	nodes := map[string]api.NodeTarget{}
	for _, m := range members {
		nodes[m.Name] = api.NodeTarget{Name: m.Name, Pool: "worker", DesiredConfig: m.Desired}
	}
	got := encodeRollouts(nodes, map[string]string{"worker": "rendered-worker-c"}, nil, prev)
	if r := got["worker"]; r.Order.Target != "rendered-worker-c" || r.Cursor.Advanced != 0 || len(r.Cursor.Except) != 0 ||
		!maps.Equal(r.Targets(), nodes) || !strings.HasPrefix(r.Order.From, "rendered-worker-b") {
		t.Fatalf("new target: order target %q from %q, cursor %+v", r.Order.Target, r.Order.From, r.Cursor)
	}
}

// TestParseStatusLayout: --status-layout takes auto, 1 or 2 and refuses
// anything else naming the value.
func TestParseStatusLayout(t *testing.T) {
	for in, want := range map[string]int{"": StatusLayoutAuto, "auto": StatusLayoutAuto, "1": StatusLayout1, "2": StatusLayout2} {
		if got, err := ParseStatusLayout(in); err != nil || got != want {
			t.Errorf("ParseStatusLayout(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseStatusLayout("3"); err == nil || !strings.Contains(err.Error(), `"3" is not a stoker/status layout`) {
		t.Errorf("ParseStatusLayout(3) = %v", err)
	}
}
