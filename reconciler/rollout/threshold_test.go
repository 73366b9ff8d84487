package rollout

import (
	"testing"

	"stoker.dev/stoker/api"
)

func TestStop(t *testing.T) {
	pct := func(n int) *int { return &n }
	// given: told the target; bad: Degraded on it.
	given := func(name string) PlanNode {
		return PlanNode{Name: name, Ready: true, Desired: "new", Report: &api.Report{State: api.StateWorking, CurrentConfig: "old", DesiredConfig: "new"}}
	}
	bad := func(name string) PlanNode {
		n := given(name)
		n.Report.State = api.StateDegraded
		return n
	}
	driftedOld := func(name string) PlanNode {
		n := done(name, "old")
		n.Report.State = api.StateDegraded
		return n
	}
	latched := &api.RolloutStop{Target: "new", MaxFailedPercent: 20, Degraded: 1, Updated: 3}
	tests := []struct {
		name string
		max  *int
		prev *api.RolloutStop
		// nodes: members of the pool
		nodes    []PlanNode
		stop     bool
		degraded int
		updated  int
	}{
		{"no threshold", nil, nil, []PlanNode{bad("a"), bad("b"), done("c", "old")}, false, 0, 0},
		{"1 of 3 is 33% > 20%", pct(20), nil, []PlanNode{bad("a"), given("b"), given("c"), done("d", "old")}, true, 1, 3},
		{"1 of 3 is 33% <= 50%", pct(50), nil, []PlanNode{bad("a"), given("b"), given("c"), done("d", "old")}, false, 0, 0},
		{"exactly the threshold does not stop", pct(50), nil, []PlanNode{bad("a"), given("b"), done("c", "old")}, false, 0, 0},
		{"0% stops at the first Degraded", pct(0), nil, []PlanNode{bad("a"), given("b"), done("c", "old")}, true, 1, 2},
		{"Degraded on the old config is not counted", pct(0), nil, []PlanNode{given("a"), driftedOld("b"), done("c", "old")}, false, 0, 0},
		{"latched while the nodes recover", pct(20), latched, []PlanNode{given("a"), given("b"), given("c"), done("d", "old")}, true, 1, 3},
		{"threshold lowered keeps the stop", pct(10), latched, []PlanNode{given("a"), given("b"), given("c"), done("d", "old")}, true, 1, 3},
		{"threshold raised re-evaluates", pct(40), latched, []PlanNode{bad("a"), given("b"), given("c"), done("d", "old")}, false, 0, 0},
		{"new target re-evaluates", pct(20), &api.RolloutStop{Target: "older", MaxFailedPercent: 20}, []PlanNode{given("a"), done("d", "old")}, false, 0, 0},
		{"nothing left to advance", pct(0), latched, []PlanNode{bad("a"), given("b")}, false, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Stop(PlanPool{Name: "worker", Target: "new", MaxFailedPercent: tc.max}, tc.nodes, tc.prev, t0)
			if (got != nil) != tc.stop {
				t.Fatalf("Stop = %+v, want stop %v", got, tc.stop)
			}
			if got != nil && (got.Degraded != tc.degraded || got.Updated != tc.updated || got.Target != "new") {
				t.Errorf("Stop = %+v, want %d of %d on new", got, tc.degraded, tc.updated)
			}
		})
	}
	// A stopped pool advances nobody, as a paused one.
	steps, err := PlanRollout(PlanPool{Name: "worker", Target: "new", Stopped: true}, []PlanNode{done("a", "old")})
	if err != nil || len(steps) != 0 {
		t.Errorf("PlanRollout of a stopped pool = %v, %v; want no step", steps, err)
	}
}
