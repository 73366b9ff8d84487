package reconciler

import (
	"context"
	"testing"

	"stoker.dev/stoker/api"
)

// TestReportMovedBetweenCheckAndFetch: an agent pushes its report again
// between the hub's ref check and its fetch. The hub's first fetch of a
// branch is one commit deep, so the commit the check saw is not in its
// cache; the hub must read the report its fetch brought, not fail the
// loop (and wait a backoff step) on the one it no longer has.
func TestReportMovedBetweenCheckAndFetch(t *testing.T) {
	e := newFleetEnv(t, map[string]string{"README.md": "config\n"})
	e.addNode("w-0", "worker")
	ctx := context.Background()
	rf, err := e.hub.checkRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checked := rf.reports["w-0"]
	e.report("w-0", api.StateDegraded, "")
	if err := e.hub.fetch(ctx, rf, e.hub.unreadReports(rf)); err != nil {
		t.Fatal(err)
	}
	reports, err := e.hub.readReports(ctx, rf)
	if err != nil {
		t.Fatalf("read reports after the branch moved: %v", err)
	}
	if r := reports["w-0"]; r == nil || r.State != api.StateDegraded {
		t.Fatalf("w-0's report %+v, want the Degraded one the fetch brought", r)
	}
	if rf.reports["w-0"] == checked {
		t.Fatal("the hub still names the commit it checked, not the one it read")
	}
}
