package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"stoker.dev/stoker/reconciler/review"
)

// TestDiffStatusRepo reads node counts from a real hub's stoker/fleet on a
// real Git server and works out the rollout from HEAD's maxUnavailable.
func TestDiffStatusRepo(t *testing.T) {
	base := map[string]string{
		"pools/worker.yaml": workerPool(false, 2),
		"mc/10-a.yaml":      fileMC("10-a", "worker", "/etc/a", "one"),
	}
	e := newFleetEnv(t, base)
	for _, n := range []string{"w1", "w2", "w3", "w4", "w5"} {
		e.addNode(n, "worker")
	}
	e.reconcile()

	head := map[string]string{
		"pools/worker.yaml": workerPool(false, 2),
		"mc/10-a.yaml":      fileMC("10-a", "worker", "/etc/a", "two"),
	}
	var out bytes.Buffer
	err := review.RunDiff(context.Background(), review.DiffOptions{Base: writeTree(t, base), Head: writeTree(t, head),
		StatusRepoURL: e.url, WorkDir: t.TempDir(), Stdout: &out, Output: "json"})
	if err != nil {
		t.Fatal(err)
	}
	var rep review.DiffReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	var worker *review.PoolDiff
	for i := range rep.Pools {
		if rep.Pools[i].Name == "worker" {
			worker = &rep.Pools[i]
		}
	}
	if worker == nil || worker.Rollout == nil {
		t.Fatalf("no rollout for worker: %s", out.String())
	}
	want := review.Rollout{Machines: 5, MaxUnavailable: 2, Rounds: 3, Summary: "5 nodes will reboot, 2 at a time: at least 3 rounds"}
	if *worker.Rollout != want {
		t.Fatalf("rollout = %+v, want %+v", *worker.Rollout, want)
	}
}
