package fleetview

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"stoker.dev/stoker/api"
)

func conditionsView() *FleetView {
	ltt := metav1.NewTime(time.Date(2026, 3, 1, 0, 3, 0, 0, time.UTC))
	return &FleetView{Commit: "abc", Pools: []api.PoolFleet{{
		Name: "worker", Config: "rendered-worker-1", State: api.PoolStateSourceInvalid, Degraded: true, MachineCount: 2,
		Conditions: []metav1.Condition{{Type: api.PoolRenderDegraded, Status: metav1.ConditionTrue, Reason: api.ReasonSourceInvalid,
			Message: "mc/70-bad.yaml: spec.config.storage.files[0].path: bad", LastTransitionTime: ltt}},
	}, {Name: "infra", Config: "rendered-infra-1", Paused: true, State: api.PoolStatePaused}}}
}

// TestStatusConditionsOutput: `stoker status -o json|yaml` carries each
// pool's conditions with reason and lastTransitionTime; the table has a
// STATE column ("source invalid", "paused") instead of a suffix glued to
// NAME, and -o wide adds the reason.
func TestStatusConditionsOutput(t *testing.T) {
	now := time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)
	for _, format := range []string{"json", "yaml"} {
		var b bytes.Buffer
		if err := WriteFleet(&b, conditionsView(), format, now); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"lastTransitionTime", "2026-03-01T00:03:00Z", "RenderDegraded", "SourceInvalid", "source invalid"} {
			if !strings.Contains(b.String(), want) {
				t.Fatalf("-o %s lacks %q:\n%s", format, want, b.String())
			}
		}
	}
	var b bytes.Buffer
	if err := WritePoolTable(&b, conditionsView().Pools, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "(paused)") || !strings.Contains(strings.Split(out, "\n")[0], "STATE") ||
		!strings.Contains(out, "source invalid") || !strings.Contains(out, "paused") {
		t.Fatalf("pool table:\n%s", out)
	}
	b.Reset()
	if err := WritePoolTableWide(&b, conditionsView().Pools, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "mc/70-bad.yaml: spec.config.storage.files[0].path: bad") || !strings.Contains(b.String(), "SOURCE") {
		t.Fatalf("wide pool table:\n%s", b.String())
	}
}
