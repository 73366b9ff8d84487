package agent

import (
	"context"
	"strings"
	"testing"
)

// TestLiveRootWithoutSystemdRefusesToStart: a --root other than "/" that
// is not offline (no --offline, no --reboot simulate) must reach the
// host's systemd, or the agent refuses to start and says what is missing.
func TestLiveRootWithoutSystemdRefusesToStart(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	o := e.options()
	o.Systemd, o.Rebooter, o.Reboot = nil, nil, "systemd"
	err := Run(context.Background(), o)
	if err == nil {
		t.Fatal("agent started on a live root without a reachable systemd")
	}
	for _, want := range []string{"run/systemd/private", "run/dbus/system_bus_socket", "--offline"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The same root, offline on request, starts.
	o.Offline = true
	if err := e.converge(o); err != nil {
		t.Fatalf("offline: %v", err)
	}
	if !e.at(c1) {
		t.Errorf("offline agent did not apply c1")
	}
}
