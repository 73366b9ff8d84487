package notify

import (
	"reflect"
	"testing"
	"time"

	"stoker.dev/stoker/api"
)

func TestDerive(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	updated := api.PoolFleet{Name: "worker", Config: "r-old", Updated: true, RolledOut: "r-old", MachineCount: 2, UpdatedMachineCount: 2}
	updating := api.PoolFleet{Name: "worker", Config: "r-new", Updating: true, RolledOut: "r-old", MachineCount: 2, SourceBranch: "main", SourceCommit: "abcdef0123"}
	done := updating
	done.Updated, done.Updating, done.RolledOut, done.UpdatedMachineCount = true, false, "r-new", 2
	stop := &api.RolloutStop{Target: "r-new", MaxFailedPercent: 20, Degraded: 1, Updated: 1, Nodes: []string{"a"}, Since: now}
	stopped := updating
	stopped.RolloutStop = stop
	bad := api.Problem{File: "pools/worker.yaml", Field: "spec", Message: "bad", Commit: "c1"}
	failing := updated
	failing.Errors = []api.Problem{bad}
	failingInfra := api.PoolFleet{Name: "infra", Config: "r-i", Updated: true, Errors: []api.Problem{bad}}
	node := func(state api.NodeState) api.NodeFleet {
		return api.NodeFleet{Name: "a", Pool: "worker", State: state, Reason: "why"}
	}
	pools := func(ps ...api.PoolFleet) map[string]api.PoolFleet {
		m := map[string]api.PoolFleet{}
		for _, p := range ps {
			m[p.Name] = p
		}
		return m
	}
	nodes := func(ns ...api.NodeFleet) map[string]api.NodeFleet {
		m := map[string]api.NodeFleet{}
		for _, n := range ns {
			m[n.Name] = n
		}
		return m
	}
	legacy := updated
	legacy.RolledOut = "" // written before the field existed
	tests := []struct {
		name       string
		prev, next Fleet
		want       []api.EventType
	}{
		{"nothing changed", Fleet{Pools: pools(updated)}, Fleet{Pools: pools(updated)}, nil},
		{"new target starts a rollout", Fleet{Pools: pools(updated)}, Fleet{Pools: pools(updating)}, []api.EventType{api.EventRolloutStarted}},
		{"all updated finishes it", Fleet{Pools: pools(updating)}, Fleet{Pools: pools(done)}, []api.EventType{api.EventRolloutFinished}},
		{"start and finish in one transition", Fleet{Pools: pools(updated)}, Fleet{Pools: pools(done)}, []api.EventType{api.EventRolloutStarted, api.EventRolloutFinished}},
		{"a fleet before rolledOut finishes nothing", Fleet{Pools: pools(legacy)}, Fleet{Pools: pools(updated)}, nil},
		{"a pool first seen converged says nothing", Fleet{}, Fleet{Pools: pools(updated)}, nil},
		{"a pool first seen updating starts", Fleet{}, Fleet{Pools: pools(updating)}, []api.EventType{api.EventRolloutStarted}},
		{"threshold stops", Fleet{Pools: pools(updating)}, Fleet{Pools: pools(stopped)}, []api.EventType{api.EventRolloutStopped}},
		{"a stop is told once", Fleet{Pools: pools(stopped)}, Fleet{Pools: pools(stopped)}, nil},
		{"render failure once, for every pool it hits", Fleet{Pools: pools(updated, api.PoolFleet{Name: "infra", Config: "r-i", Updated: true})},
			Fleet{Pools: pools(failing, failingInfra)}, []api.EventType{api.EventRenderFailed}},
		{"the same failure is not told again", Fleet{Pools: pools(failing)}, Fleet{Pools: pools(failing)}, nil},
		{"node Degraded", Fleet{Nodes: nodes(node(api.StateDone))}, Fleet{Nodes: nodes(node(api.StateDegraded))}, []api.EventType{api.EventNodeDegraded}},
		{"node stays Degraded", Fleet{Nodes: nodes(node(api.StateDegraded))}, Fleet{Nodes: nodes(node(api.StateDegraded))}, nil},
		{"node Unreachable", Fleet{Nodes: nodes(node(api.StateDegraded))}, Fleet{Nodes: nodes(node(api.StateUnreachable))}, []api.EventType{api.EventNodeUnreachable}},
		{"node back to Done says nothing", Fleet{Nodes: nodes(node(api.StateDegraded))}, Fleet{Nodes: nodes(node(api.StateDone))}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := Derive(tc.prev, tc.next, now, "f1")
			var got []api.EventType
			for _, e := range evs {
				got = append(got, e.Type)
				if e.ID == "" || e.FleetCommit != "f1" || !e.Time.Equal(now) || e.Message == "" {
					t.Errorf("event %+v lacks id, fleet commit, time or message", e)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Derive = %v, want %v", got, tc.want)
			}
			if tc.name == "render failure once, for every pool it hits" && !reflect.DeepEqual(evs[0].Pools, []string{"infra", "worker"}) {
				t.Errorf("render failure pools = %v, want [infra worker]", evs[0].Pools)
			}
			again := Derive(tc.prev, tc.next, now, "f1")
			for i := range again {
				if again[i].ID != evs[i].ID {
					t.Errorf("ID of %s not stable: %s, %s", evs[i].Type, evs[i].ID, again[i].ID)
				}
			}
		})
	}
}
