package fleetview

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
)

// TestWindowsAndHoldsShown: `stoker status` and the fleet README say
// whether a pool's window is open and when it opens next, which nodes are
// held, and why a node waits.
func TestWindowsAndHoldsShown(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	opens := time.Date(2026, 3, 14, 2, 0, 0, 0, berlin)
	closes := time.Date(2026, 3, 14, 4, 0, 0, 0, berlin)
	v := &FleetView{
		Pools: []api.PoolFleet{
			{Name: "worker", Window: &api.WindowStatus{Schedule: "0 2 * * 6", Duration: "2h0m0s", TimeZone: "Europe/Berlin", AppliesTo: api.WindowDisruptive, Opens: &opens}, Held: []string{"w-1"}},
			{Name: "infra", Window: &api.WindowStatus{Schedule: "@daily", Duration: "1h0m0s", TimeZone: "UTC", AppliesTo: api.WindowAll, Open: true, Closes: &closes}},
		},
		Nodes: []api.NodeFleet{{Name: "w-1", Pool: "worker", State: api.StateDone, Waiting: "held in .stoker/rollout.yaml: disk swap"}},
	}
	var out bytes.Buffer
	if err := WriteFleet(&out, v, "table", opens); err != nil {
		t.Fatal(err)
	}
	readme := string(README(v.Pools, v.Nodes, opens))
	for _, want := range []string{
		`pool worker: maintenance window "0 2 * * 6" for 2h0m0s (Europe/Berlin), disruptive updates: closed, opens 2026-03-14T02:00:00+01:00`,
		`pool infra: maintenance window "@daily" for 1h0m0s (UTC), all updates: open until 2026-03-14T04:00:00+01:00`,
		"pool worker: held in .stoker/rollout.yaml: w-1",
		"held in .stoker/rollout.yaml: disk swap",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stoker status lacks %q:\n%s", want, out.String())
		}
		if !strings.Contains(readme, MDEscape(want)) {
			t.Errorf("README lacks %q:\n%s", want, readme)
		}
	}
}
