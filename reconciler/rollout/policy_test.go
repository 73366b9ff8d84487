package rollout

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	"stoker.dev/stoker/api"
)

func window(t *testing.T, schedule, duration, tz, appliesTo string) *api.MaintenanceWindow {
	t.Helper()
	a := map[string]string{api.WindowAnnotation: schedule, api.WindowDurationAnnotation: duration, api.WindowTimeZoneAnnotation: tz}
	if appliesTo != "" {
		a[api.WindowAppliesToAnnotation] = appliesTo
	}
	w, ps := api.ParseWindow(a)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	return w
}

func withAction(n PlanNode, a api.ActionType) PlanNode { n.Action = a; return n }

// TestPlanRolloutWindow: a disruptive update starts only inside the
// window; a non-disruptive one goes at any time unless the window applies
// to all updates; a node already moving to the target keeps going; the
// window is read at the clock in the pool, across New York's
// spring-forward night.
func TestPlanRolloutWindow(t *testing.T) {
	three := intstr.FromInt32(3)
	// 02:30 America/New_York does not exist on 2026-03-08: the window opens
	// at 03:00 EDT (07:00Z).
	w := window(t, "30 2 * * *", "1h", "America/New_York", "")
	all := window(t, "30 2 * * *", "1h", "America/New_York", "all")
	before := time.Date(2026, 3, 8, 6, 59, 0, 0, time.UTC)
	inside := time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)
	after := time.Date(2026, 3, 8, 8, 0, 0, 0, time.UTC)
	nodes := func() []PlanNode {
		return []PlanNode{
			withAction(done("reboot", "old"), api.ActionReboot),
			withAction(done("drain", "old"), api.ActionDrain),
			withAction(done("reload", "old"), api.ActionReload),
			withAction(done("unknown", "old"), ""),
		}
	}
	for _, tc := range []struct {
		name string
		win  *api.MaintenanceWindow
		now  time.Time
		want []string
	}{
		{"closed: only the non-disruptive one", w, before, []string{"reload"}},
		{"open: all", w, inside, []string{"drain", "reboot", "reload"}},
		{"closed again at the end", w, after, []string{"reload"}},
		{"applies to all: nothing while closed", all, before, []string{}},
		{"applies to all: open", all, inside, []string{"drain", "reboot", "reload"}},
		{"no window", nil, before, []string{"drain", "reboot", "reload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := PlanPool{Name: "worker", Target: "new", MaxUnavailable: &three, Window: tc.win, Now: tc.now}
			steps, err := PlanRollout(pool, nodes())
			if err != nil {
				t.Fatal(err)
			}
			got := names(steps)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("advanced %v, want %v", got, tc.want)
			}
		})
	}
	// In flight: a node already told to run the target is not a candidate,
	// so a closing window never takes its target back.
	moving := withAction(done("moving", "old"), api.ActionReboot)
	moving.Desired = "new"
	moving.Report.State = api.StateWorking
	steps, _ := PlanRollout(PlanPool{Name: "worker", Target: "new", Window: w, Now: after}, []PlanNode{moving})
	if len(steps) != 0 {
		t.Errorf("in-flight node got steps %v", steps)
	}
	msg := Blocked(PlanPool{Name: "worker", Target: "new", Window: w, Now: before}, withAction(done("x", "old"), api.ActionReboot))
	if !strings.Contains(msg, "maintenance window") || !strings.Contains(msg, "2026-03-08T03:00:00-04:00") {
		t.Errorf("Blocked = %q, want the window and its opening", msg)
	}
}

// TestPlanRolloutHolds: a held node never advances and costs no capacity;
// the others roll on; once the hold is gone it advances.
func TestPlanRolloutHolds(t *testing.T) {
	policy := &api.RolloutPolicy{Holds: []api.Hold{{Node: "a", Reason: "disk swap"}}}
	pool := PlanPool{Name: "worker", Target: "new", Policy: policy}
	nodes := []PlanNode{done("a", "old"), done("b", "old")}
	steps, _ := PlanRollout(pool, nodes)
	if got := names(steps); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("with a hold: %v, want [b]", got)
	}
	if msg := Blocked(pool, nodes[0]); msg != "held in .stoker/rollout.yaml: disk swap" {
		t.Errorf("Blocked = %q", msg)
	}
	pool.Policy = &api.RolloutPolicy{}
	steps, _ = PlanRollout(pool, nodes)
	if got := names(steps); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("hold removed: %v, want [a]", got)
	}
}

// TestPlanRolloutOrder: the repo's order comes before zone-then-age, which
// still orders what the order leaves equal.
func TestPlanRolloutOrder(t *testing.T) {
	all := intstr.FromInt32(10)
	wave := func(n PlanNode, v string) PlanNode {
		if v != "" {
			n.Labels["example.com/wave"] = v
		}
		return n
	}
	nodes := []PlanNode{
		wave(withZone(done("a", "old"), "z1", 1), "2"),
		wave(withZone(done("b", "old"), "z1", 2), "10"),
		wave(withZone(done("c", "old"), "z2", 0), ""),
		wave(withZone(done("d", "old"), "z0", 3), "2"),
		wave(withZone(done("e", "old"), "z3", 4), "canary"),
	}
	for _, tc := range []struct {
		name  string
		order *api.RolloutOrder
		want  []string
	}{
		{"none: zone then age", nil, []string{"d", "a", "b", "c", "e"}},
		{"explicit list first", &api.RolloutOrder{Nodes: []string{"e", "b"}}, []string{"e", "b", "d", "a", "c"}},
		{"label values listed", &api.RolloutOrder{Label: "example.com/wave", Values: []string{"canary", "2"}}, []string{"e", "d", "a", "b", "c"}},
		{"label ascending, numbers numerically, unlabelled last", &api.RolloutOrder{Label: "example.com/wave"}, []string{"d", "a", "b", "e", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := PlanRollout(PlanPool{Name: "worker", Target: "new", MaxUnavailable: &all, Policy: &api.RolloutPolicy{Order: tc.order}}, nodes)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(steps); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("order %v, want %v", got, tc.want)
			}
		})
	}
}
