package reconciler

import (
	"context"
	"errors"
	"strings"
	"testing"

	"stoker.dev/stoker/api"
)

// TestHubLayoutMarker: the hub writes layout.yaml (version 1) on
// stoker/status and stoker/fleet, takes a branch without it for version 1
// (branches written before the marker existed), and refuses a branch in a
// newer layout, naming the branch and the version, rather than rewrite it.
func TestHubLayoutMarker(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"mc/10-a.yaml":      fileMC("10-a", "worker", "/etc/a", "one"),
	})
	e.addNode("w1", "worker")
	e.reconcile()
	for _, b := range []string{api.StatusBranch, api.FleetBranch} {
		if got := e.readBranch(b)[api.LayoutFile]; got != "version: 1\n" {
			t.Fatalf("%s %s = %q, want version 1", b, api.LayoutFile, got)
		}
	}

	// A status branch from before the marker: still read as version 1,
	// and the next commit puts the marker back.
	e.push(api.StatusBranch, nil, api.LayoutFile)
	if _, ok := e.readBranch(api.StatusBranch)[api.LayoutFile]; ok {
		t.Fatal("marker still on stoker/status after removing it")
	}
	res := e.reconcile()
	if res.StatusCommit == "" {
		t.Fatal("the hub did not restore the marker on stoker/status")
	}
	if got := e.readBranch(api.StatusBranch)[api.LayoutFile]; got != "version: 1\n" {
		t.Fatalf("stoker/status %s = %q after restore, want version 1", api.LayoutFile, got)
	}

	// A newer hub's layout: refused, and the branch is left as it is.
	e.push(api.FleetBranch, map[string]string{api.LayoutFile: "version: 2\n"})
	before := e.readBranch(api.FleetBranch)
	e.now = e.now.Add(60e9)
	_, err := e.hub.Reconcile(context.Background())
	if !errors.Is(err, api.ErrUnknownLayout) || !strings.Contains(err.Error(), "stoker/fleet is in layout version 2") {
		t.Fatalf("reconcile over a version-2 stoker/fleet: err = %v, want ErrUnknownLayout naming the branch and version", err)
	}
	after := e.readBranch(api.FleetBranch)
	if after[api.LayoutFile] != before[api.LayoutFile] || after["README.md"] != before["README.md"] {
		t.Fatal("the hub rewrote a stoker/fleet it cannot read")
	}
}
