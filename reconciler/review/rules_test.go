package review

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/reconciler/render"
)

// TestDiffShowsWindowsHoldsAndOrder: a pull request that adds a window,
// holds and an order shows each, with when the window opens next at the
// diff's clock; a broken rollout file fails the diff with file and field.
func TestDiffShowsWindowsHoldsAndOrder(t *testing.T) {
	base := map[string]string{
		"pools/worker.yaml":    workerPool(false, 1),
		"mc/50-a.yaml":         fileMC("50-a", "worker", "/etc/a.conf", "v1"),
		".stoker/rollout.yaml": "holds:\n- node: w-3\n",
	}
	head := map[string]string{
		"pools/worker.yaml": strings.Replace(workerPool(false, 1), "  name: worker\n", "  name: worker\n  annotations:\n"+
			"    stoker.dev/maintenance-window: \"0 2 * * 6\"\n    stoker.dev/maintenance-window-duration: 2h\n"+
			"    stoker.dev/maintenance-window-time-zone: Europe/Berlin\n", 1),
		"mc/50-a.yaml":         fileMC("50-a", "worker", "/etc/a.conf", "v2"),
		".stoker/rollout.yaml": "holds:\n- node: w-1\n  reason: disk swap\norder:\n  nodes: [w-2, w-0]\n",
	}
	now := func() time.Time { return time.Date(2026, 3, 13, 20, 0, 0, 0, time.UTC) } // a Friday
	for _, format := range []string{"text", "markdown"} {
		var out bytes.Buffer
		if err := RunDiff(context.Background(), DiffOptions{Base: writeTree(t, base), Head: writeTree(t, head), Stdout: &out, Output: format, Now: now}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`nodes wait for the maintenance window: closed, opens 2026-03-14T02:00:00+01:00`,
			`pool worker: maintenance window "0 2 * * 6" for 2h0m0s (Europe/Berlin), disruptive updates (new); closed, opens 2026-03-14T02:00:00+01:00`,
			`held in .stoker/rollout.yaml: w-1 (new)`,
			`hold released (these nodes update again): w-3`,
			`order: nodes w-2, w-0 first, then zone, then oldest first (was: zone, then oldest first)`,
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: diff lacks %q:\n%s", format, want, out.String())
			}
		}
	}
	// With stoker/fleet known, names it does not know are warnings.
	fleet := writeTree(t, map[string]string{
		"pools/worker.yaml": "name: worker\nmachineCount: 2\n",
		"nodes/w-0.yaml":    "name: w-0\npool: worker\n",
		"nodes/w-2.yaml":    "name: w-2\npool: worker\n",
	})
	var fout bytes.Buffer
	if err := RunDiff(context.Background(), DiffOptions{Base: writeTree(t, base), Head: writeTree(t, head), FleetDir: fleet, Stdout: &fout, Now: now}); err != nil {
		t.Fatal(err)
	}
	if want := ".stoker/rollout.yaml: holds[0].node: warning: no node named w-1 in the fleet"; !strings.Contains(fout.String(), want) || strings.Contains(fout.String(), "no node named w-2") {
		t.Errorf("diff with the fleet lacks %q (or warns of a known node):\n%s", want, fout.String())
	}
	head[".stoker/rollout.yaml"] = "holds:\n- node: Bad_Node\n"
	var out bytes.Buffer
	err := RunDiff(context.Background(), DiffOptions{Base: writeTree(t, base), Head: writeTree(t, head), Stdout: &out, Now: now})
	if !errors.Is(err, render.ErrInvalid) || !strings.Contains(out.String(), ".stoker/rollout.yaml: holds[0].node: node name") {
		t.Errorf("bad rollout file: err %v, output:\n%s", err, out.String())
	}
}
