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

// TestFailedHookShown: a node's failed lifecycle hook is shown under the
// node table and in the fleet README, with the end of its output.
func TestFailedHookShown(t *testing.T) {
	var out []string
	for i := 0; i < 15; i++ {
		out = append(out, "line "+string(rune('a'+i)))
	}
	nodes := []api.NodeFleet{{Name: "n0", State: api.StateDone}, {Name: "n1", Pool: "worker", State: api.StateDegraded,
		Reason: "health gate after reboot into rendered-worker-2 failed: ...",
		Hook: &api.HookResult{Point: "after-reboot", Hook: "/etc/stoker/hooks.d/after-reboot/50-gate", Config: "rendered-worker-2",
			Error: "exit status 1", Output: strings.Join(out, "\n") + "\n"}}}
	var b strings.Builder
	if err := WriteNodeTable(&b, nodes, time.Now()); err != nil {
		t.Fatal(err)
	}
	readme := string(README(nil, nodes, time.Now()))
	for name, got := range map[string]string{"table": b.String(), "README": readme} {
		for _, w := range []string{"/etc/stoker/hooks.d/after-reboot/50-gate", "n1", "rendered-worker-2", "exit status 1", "line f", "line o"} {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %q:\n%s", name, w, got)
			}
		}
		if strings.Contains(got, "line e\n") {
			t.Errorf("%s shows more than the last %d lines:\n%s", name, hookTailLines, got)
		}
	}
	if !strings.Contains(readme, "## Failed hooks") {
		t.Errorf("README lacks the section:\n%s", readme)
	}
}
