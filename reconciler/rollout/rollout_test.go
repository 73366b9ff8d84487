package rollout

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"stoker.dev/stoker/api"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// done is a node that reported Done at config cur, which is also its
// desired config.
func done(name, cur string) PlanNode {
	return PlanNode{Name: name, Ready: true, Desired: cur, Report: &api.Report{State: api.StateDone, CurrentConfig: cur}}
}

func withZone(n PlanNode, zone string, age int) PlanNode {
	n.Labels = map[string]string{api.ZoneLabel: zone}
	if zone == "" {
		n.Labels = nil
	}
	n.Created = t0.Add(time.Duration(age) * time.Hour)
	return n
}

func names(steps []Step) []string {
	out := []string{}
	for _, s := range steps {
		out = append(out, s.Node)
	}
	return out
}

func TestPlanRollout(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(i int) *intstr.IntOrString { v := intstr.FromInt32(int32(i)); return &v }
	degraded := func(name, cur string) PlanNode {
		n := done(name, cur)
		n.Report.State = api.StateDegraded
		return n
	}
	notReady := func(n PlanNode) PlanNode { n.Ready = false; return n }
	tests := []struct {
		name  string
		pool  PlanPool
		nodes []PlanNode
		want  []string
	}{
		{"default maxUnavailable is 1", PlanPool{Name: "worker", Target: "new"},
			[]PlanNode{done("a", "old"), done("b", "old"), done("c", "old")}, []string{"a"}},
		{"int maxUnavailable", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(2)},
			[]PlanNode{done("a", "old"), done("b", "old"), done("c", "old")}, []string{"a", "b"}},
		{"percent rounds down", PlanPool{Name: "worker", Target: "new", MaxUnavailable: pct("50%")},
			[]PlanNode{done("a", "old"), done("b", "old"), done("c", "old")}, []string{"a"}},
		{"percent at least 1", PlanPool{Name: "worker", Target: "new", MaxUnavailable: pct("10%")},
			[]PlanNode{done("a", "old"), done("b", "old"), done("c", "old")}, []string{"a"}},
		{"zero is at least 1", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(0)},
			[]PlanNode{done("a", "old"), done("b", "old")}, []string{"a"}},
		{"paused advances nobody", PlanPool{Name: "worker", Target: "new", Paused: true},
			[]PlanNode{done("a", "old")}, []string{}},
		{"no target advances nobody", PlanPool{Name: "worker"},
			[]PlanNode{done("a", "old")}, []string{}},
		{"up to date nodes are not candidates", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(3)},
			[]PlanNode{done("a", "new"), done("b", "old")}, []string{"b"}},
		{"zones alphabetically, zoneless last, then oldest", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(4)},
			[]PlanNode{
				withZone(done("z-none", "old"), "", 0),
				withZone(done("b-young", "old"), "zone-b", 5),
				withZone(done("b-old", "old"), "zone-b", 1),
				withZone(done("a", "old"), "zone-a", 9),
				withZone(done("c", "old"), "zone-c", 0),
			}, []string{"a", "b-old", "b-young", "c"}},
		{"unknown age sorts after known age", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(1)},
			[]PlanNode{withZone(done("x", "old"), "z", 0), func() PlanNode { n := withZone(done("y", "old"), "z", 0); n.Created = time.Time{}; return n }()},
			[]string{"x"}},
		{"degraded node consumes capacity", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(1)},
			[]PlanNode{degraded("a", "new"), done("b", "old")}, []string{}},
		{"working node consumes capacity", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(2)},
			[]PlanNode{{Name: "a", Ready: true, Desired: "new", Report: &api.Report{State: api.StateWorking, CurrentConfig: "old"}}, done("b", "old"), done("c", "old")},
			[]string{"b"}},
		{"not ready consumes capacity", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(1)},
			[]PlanNode{notReady(done("a", "new")), done("b", "old")}, []string{}},
		{"degraded candidate costs no capacity", PlanPool{Name: "worker", Target: "fix", MaxUnavailable: num(1)},
			[]PlanNode{degraded("a", "bad"), done("b", "bad")}, []string{"a"}},
		{"never-reported nodes cost capacity", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(1)},
			[]PlanNode{{Name: "a", Ready: true}, {Name: "b", Ready: true}}, []string{}},
		{"never-reported and capacity", PlanPool{Name: "worker", Target: "new", MaxUnavailable: num(3)},
			[]PlanNode{{Name: "a", Ready: true}, {Name: "b", Ready: true}}, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := PlanRollout(tc.pool, tc.nodes)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(steps); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("advanced %v, want %v", got, tc.want)
			}
			for _, s := range steps {
				if s.To != tc.pool.Target || s.Pool != tc.pool.Name {
					t.Fatalf("step %+v does not target pool %s at %s", s, tc.pool.Name, tc.pool.Target)
				}
			}
		})
	}
}

func TestPlanRolloutBadMaxUnavailable(t *testing.T) {
	v := intstr.FromString("lots")
	if _, err := PlanRollout(PlanPool{Name: "worker", Target: "x", MaxUnavailable: &v}, []PlanNode{done("a", "y")}); err == nil {
		t.Fatal("want an error for maxUnavailable \"lots\"")
	}
}

func TestAssign(t *testing.T) {
	role := func(r string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{api.NodeRoleLabelPrefix + r: ""}}
	}
	pools := []PlanPool{
		{Name: "master", NodeSelector: role("master")},
		{Name: "worker", NodeSelector: role("worker")},
		{Name: "infra", NodeSelector: role("infra")},
		{Name: "canary", NodeSelector: role("canary")},
	}
	node := func(name string, roles ...string) PlanNode {
		l := map[string]string{}
		for _, r := range roles {
			l[api.NodeRoleLabelPrefix+r] = ""
		}
		return PlanNode{Name: name, Labels: l}
	}
	m, err := Assign(pools, []PlanNode{
		node("w", "worker"),
		node("i", "worker", "infra"),
		node("m", "master", "worker", "infra"),
		node("both", "worker", "infra", "canary"),
		node("none", "gpu"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"w": "worker", "i": "infra", "m": "master"}
	if !reflect.DeepEqual(m.Pool, want) {
		t.Fatalf("pools %v, want %v", m.Pool, want)
	}
	if got := m.Errors["both"]; got != "node matches more than one custom pool: canary, infra" {
		t.Fatalf("error for node both: %q", got)
	}
	if len(m.Errors) != 1 {
		t.Fatalf("errors %v, want only node both", m.Errors)
	}
}
