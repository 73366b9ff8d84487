package api

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// TestReadPoolRolloutRefuses: a layout 2 rollout whose order and cursor do
// not fit together, or that is over a bound, is refused naming the file
// and field; a good one decodes to every node's target.
func TestReadPoolRolloutRefuses(t *testing.T) {
	const order = "pool: worker\ntarget: rendered-worker-b\nfrom: rendered-worker-a\nnodes:\n- name: n1\n- name: n2\n- name: n3\n  none: true\n- name: n4\n  from: rendered-worker-x\n"
	const cursor = "pool: worker\ntarget: rendered-worker-b\nadvanced: 1\nexcept:\n  n5: rendered-worker-b\n"
	many := "pool: worker\ntarget: rendered-worker-b\nadvanced: 0\nexcept:\n"
	for i := 0; i <= MaxRolloutExceptions; i++ {
		many += fmt.Sprintf("  n%d: rendered-worker-b\n", i)
	}
	tests := []struct {
		name          string
		order, cursor string
		wantErr       string
	}{
		{name: "good", order: order, cursor: cursor},
		{name: "cursor of another pool", order: order, cursor: strings.Replace(cursor, "pool: worker", "pool: infra", 1),
			wantErr: `rollouts/worker/cursor.yaml: pool: "infra", want "worker"`},
		{name: "cursor for another target", order: order, cursor: strings.Replace(cursor, "target: rendered-worker-b", "target: rendered-worker-c", 1),
			wantErr: `rollouts/worker/cursor.yaml: target: "rendered-worker-c", but rollouts/worker/order.yaml has "rendered-worker-b"`},
		{name: "advanced past the order", order: order, cursor: strings.Replace(cursor, "advanced: 1", "advanced: 5", 1),
			wantErr: "rollouts/worker/cursor.yaml: advanced: 5, want 0 to 4"},
		{name: "node twice", order: order + "- name: n1\n", cursor: cursor,
			wantErr: "rollouts/worker/order.yaml: nodes[4].name: n1 is listed twice"},
		{name: "bad node name", order: order + "- name: Bad_Name\n", cursor: cursor,
			wantErr: "rollouts/worker/order.yaml: nodes[4].name: "},
		{name: "unknown field", order: order + "extra: 1\n", cursor: cursor, wantErr: "parse rollouts/worker/order.yaml: "},
		{name: "too many exceptions", order: order, cursor: many,
			wantErr: fmt.Sprintf("rollouts/worker/cursor.yaml: except: %d entries, over the limit of %d", MaxRolloutExceptions+1, MaxRolloutExceptions)},
		{name: "oversized order", order: order + "#" + strings.Repeat("x", MaxOrderBytes), cursor: cursor,
			wantErr: "rollouts/worker/order.yaml is "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := fstest.MapFS{RolloutOrderFile("worker"): {Data: []byte(tc.order)}, RolloutCursorFile("worker"): {Data: []byte(tc.cursor)}}
			r, err := ReadPoolRollout(tree, "worker")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadPoolRollout = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"n1": "rendered-worker-b", "n2": "rendered-worker-a", "n4": "rendered-worker-x", "n5": "rendered-worker-b"}
			got := r.Targets()
			if len(got) != len(want) {
				t.Fatalf("targets %v, want %v", got, want)
			}
			for n, d := range want {
				if got[n].DesiredConfig != d || got[n].Pool != "worker" {
					t.Errorf("node %s: %+v, want %s in worker", n, got[n], d)
				}
				if one, ok := r.Desired(n); !ok || one != d {
					t.Errorf("Desired(%s) = %q, %v", n, one, ok)
				}
			}
			if _, ok := r.Desired("n3"); ok {
				t.Error("n3 (none before the rollout, not advanced) has a target")
			}
		})
	}
}
