package fleetview

import (
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
)

func TestWriteNodeTableDrift(t *testing.T) {
	tests := []struct {
		name  string
		nodes []api.NodeFleet
		want  []string
		not   []string
	}{
		{"no drift", []api.NodeFleet{{Name: "n1", Pool: "worker", State: api.StateDone}}, nil, []string{"drift on"}},
		{"drift", []api.NodeFleet{{Name: "n1", Pool: "worker", State: api.StateDegraded,
			Reason: "drift: /etc/chrony.conf content changed; unit chronyd.service is disabled (want enabled)",
			Drift: []api.DriftFinding{
				{Kind: "content", Path: "/etc/chrony.conf", Expected: "sha256:aa", Found: "sha256:bb"},
				{Kind: "unit", Unit: "chronyd.service", Expected: "enabled", Found: "disabled"},
			}}},
			[]string{"drift: /etc/chrony.conf content changed", "drift on n1:",
				"content /etc/chrony.conf: expected sha256:aa, found sha256:bb",
				"unit chronyd.service: expected enabled, found disabled"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteNodeTable(&b, tc.nodes, time.Now()); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tc.not {
				if strings.Contains(b.String(), w) {
					t.Errorf("output has %q:\n%s", w, b.String())
				}
			}
		})
	}
}
