package httpserver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHealthStandingBy: a replica that does not lead is alive and ready
// while it reads the Lease (never restarted for not leading), however
// long it has not reconciled; the leader is judged by its reconciles,
// counted from when it took the lead.
func TestHealthStandingBy(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h := &Health{now: func() time.Time { return now }, started: now}
	const window = time.Minute
	probe := func(name string, hf http.HandlerFunc) int {
		w := httptest.NewRecorder()
		hf(w, httptest.NewRequest(http.MethodGet, "/"+name, nil))
		return w.Code
	}
	want := func(step string, live, ready int) {
		t.Helper()
		if got := probe("healthz", h.healthz(window)); got != live {
			t.Errorf("%s: /healthz %d, want %d", step, got, live)
		}
		if got := probe("readyz", h.readyz(window)); got != ready {
			t.Errorf("%s: /readyz %d, want %d", step, got, ready)
		}
	}
	for i := 0; i < 10; i++ { // ten windows standing by
		now = now.Add(window / 2)
		h.Observed()
		want("standing by", 200, 200)
	}
	now = now.Add(2 * window) // the Lease not read for two windows
	want("lease lost", 503, 503)

	h.Observed()
	h.SetLeading(true)
	want("just leading, no reconcile yet", 200, 503)
	h.Record(nil)
	want("leading, reconciled", 200, 200)
	now = now.Add(window / 2)
	h.Record(errors.New("git down"))
	want("leading, last reconcile failed", 200, 503)
	now = now.Add(window)
	want("leading, no success for a window", 503, 503)

	h.SetLeading(false)
	h.Observed()
	want("standing by again", 200, 200)
}
