package api

import (
	"strings"
	"testing"
	"time"
)

func mustWindow(t *testing.T, schedule, duration, tz string) *MaintenanceWindow {
	t.Helper()
	a := map[string]string{WindowAnnotation: schedule, WindowDurationAnnotation: duration}
	if tz != "" {
		a[WindowTimeZoneAnnotation] = tz
	}
	w, ps := ParseWindow(a)
	if len(ps) > 0 {
		t.Fatalf("ParseWindow: %v", ps)
	}
	return w
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestWindowAcrossDST pins what a window does on the days the clocks
// change: a start in the skipped hour opens when the clocks jump, a start
// in the repeated hour opens once (its first occurrence), and the
// duration is elapsed time.
func TestWindowAcrossDST(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		schedule, duration, tz string
		at                     string // instant, UTC
		open                   bool
		closes, opens          string // RFC3339 in the window's zone; "" = not checked/zero
	}{
		// America/New_York springs forward on 2026-03-08 at 02:00 EST → 03:00 EDT.
		{"ny spring-forward: before the skipped start", "30 2 * * *", "1h", "America/New_York", "2026-03-08T06:59:00Z", false, "", "2026-03-08T03:00:00-04:00"},
		{"ny spring-forward: opens at the jump", "30 2 * * *", "1h", "America/New_York", "2026-03-08T07:00:00Z", true, "2026-03-08T04:00:00-04:00", "2026-03-09T02:30:00-04:00"},
		{"ny day before spring-forward", "30 2 * * *", "1h", "America/New_York", "2026-03-07T07:30:00Z", true, "2026-03-07T03:30:00-05:00", "2026-03-08T03:00:00-04:00"},
		{"ny spring-forward: start after the gap", "0 3 * * *", "1h", "America/New_York", "2026-03-08T06:30:00Z", false, "", "2026-03-08T03:00:00-04:00"},
		// America/New_York falls back on 2026-11-01 at 02:00 EDT → 01:00 EST.
		{"ny fall-back: first 01:30 opens", "30 1 * * *", "1h", "America/New_York", "2026-11-01T05:30:00Z", true, "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"},
		{"ny fall-back: second 01:30 does not reopen", "30 1 * * *", "1h", "America/New_York", "2026-11-01T06:45:00Z", false, "", "2026-11-02T01:30:00-05:00"},
		{"ny fall-back: 4h window is 4h elapsed", "0 0 * * *", "4h", "America/New_York", "2026-11-01T07:59:00Z", true, "2026-11-01T03:00:00-05:00", ""},
		// Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
		{"berlin spring-forward: skipped start opens at 03:00", "30 2 * * *", "2h", "Europe/Berlin", "2026-03-29T01:00:00Z", true, "2026-03-29T05:00:00+02:00", "2026-03-30T02:30:00+02:00"},
		{"berlin spring-forward: window across the jump", "0 1 * * 0", "4h", "Europe/Berlin", "2026-03-29T03:59:00Z", true, "2026-03-29T06:00:00+02:00", "2026-04-05T01:00:00+02:00"},
		{"berlin fall-back: first 02:30", "30 2 * * *", "1h", "Europe/Berlin", "2026-10-25T00:30:00Z", true, "2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"},
		{"berlin fall-back: second 02:30 closed", "30 2 * * *", "1h", "Europe/Berlin", "2026-10-25T01:30:00Z", false, "", "2026-10-26T02:30:00+01:00"},
		{"berlin weekly saturday, friday evening", "0 2 * * 6", "2h", "Europe/Berlin", "2026-03-13T20:00:00Z", false, "", "2026-03-14T02:00:00+01:00"},
		{"utc default, closing edge is closed", "0 2 * * *", "2h", "", "2026-06-01T04:00:00Z", false, "", "2026-06-02T02:00:00Z"},
		{"utc default, opening edge is open", "0 2 * * *", "2h", "", "2026-06-01T02:00:00Z", true, "2026-06-01T04:00:00Z", "2026-06-02T02:00:00Z"},
		{"overlapping openings join", "0 * * * *", "90m", "UTC", "2026-06-01T10:15:00Z", true, "", ""},
		{"descriptor", "@daily", "30m", "Asia/Tokyo", "2026-06-01T15:10:00Z", true, "2026-06-02T00:30:00+09:00", "2026-06-03T00:00:00+09:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := mustWindow(t, tc.schedule, tc.duration, tc.tz)
			st := w.State(utc(tc.at))
			if st.Open != tc.open {
				t.Fatalf("open = %v at %s, want %v (state %+v)", st.Open, tc.at, tc.open, st)
			}
			if tc.closes != "" && st.Closes.Format(time.RFC3339) != tc.closes {
				t.Errorf("closes %s, want %s", st.Closes.Format(time.RFC3339), tc.closes)
			}
			if tc.opens != "" && st.Opens.Format(time.RFC3339) != tc.opens {
				t.Errorf("opens %s, want %s", st.Opens.Format(time.RFC3339), tc.opens)
			}
		})
	}
}

// TestWindowOverlapClosesLater: an always-open schedule chains openings
// into one and still answers (bounded walk).
func TestWindowOverlapClosesLater(t *testing.T) {
	w := mustWindow(t, "*/5 * * * *", "1h", "UTC")
	st := w.State(utc("2026-06-01T10:00:00Z"))
	if !st.Open || !st.Closes.After(utc("2026-06-01T12:00:00Z")) {
		t.Fatalf("state %+v, want open well past noon", st)
	}
}

func TestParseWindowProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		a     map[string]string
		field string
		msg   string
	}{
		{"bad cron", map[string]string{WindowAnnotation: "0 25 * * *", WindowDurationAnnotation: "1h"}, WindowAnnotation, "not a cron schedule"},
		{"six fields", map[string]string{WindowAnnotation: "0 0 2 * * *", WindowDurationAnnotation: "1h"}, WindowAnnotation, "not a cron schedule"},
		{"never", map[string]string{WindowAnnotation: "0 0 30 2 *", WindowDurationAnnotation: "1h"}, WindowAnnotation, "never starts"},
		{"every", map[string]string{WindowAnnotation: "@every 1h", WindowDurationAnnotation: "1h"}, WindowAnnotation, "@every"},
		{"tz prefix", map[string]string{WindowAnnotation: "CRON_TZ=UTC 0 2 * * *", WindowDurationAnnotation: "1h"}, WindowAnnotation, WindowTimeZoneAnnotation},
		{"no duration", map[string]string{WindowAnnotation: "0 2 * * *"}, WindowDurationAnnotation, "required"},
		{"bad duration", map[string]string{WindowAnnotation: "0 2 * * *", WindowDurationAnnotation: "4 hours"}, WindowDurationAnnotation, "not a duration"},
		{"zero duration", map[string]string{WindowAnnotation: "0 2 * * *", WindowDurationAnnotation: "0s"}, WindowDurationAnnotation, "between"},
		{"long duration", map[string]string{WindowAnnotation: "0 2 * * *", WindowDurationAnnotation: "800h"}, WindowDurationAnnotation, "between"},
		{"bad zone", map[string]string{WindowAnnotation: "0 2 * * *", WindowDurationAnnotation: "1h", WindowTimeZoneAnnotation: "Mars/Olympus"}, WindowTimeZoneAnnotation, "not an IANA time zone"},
		{"local zone", map[string]string{WindowAnnotation: "0 2 * * *", WindowDurationAnnotation: "1h", WindowTimeZoneAnnotation: "Local"}, WindowTimeZoneAnnotation, "IANA"},
		{"bad scope", map[string]string{WindowAnnotation: "0 2 * * *", WindowDurationAnnotation: "1h", WindowAppliesToAnnotation: "reboots"}, WindowAppliesToAnnotation, "not one of"},
		{"duration alone", map[string]string{WindowDurationAnnotation: "1h"}, WindowDurationAnnotation, "needs " + WindowAnnotation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ps := ParseWindow(tc.a)
			if w != nil || len(ps) == 0 {
				t.Fatalf("ParseWindow = %v, %v; want a problem", w, ps)
			}
			want := "metadata.annotations[" + tc.field + "]"
			if ps[0].Field != want || !strings.Contains(ps[0].Message, tc.msg) || ps[0].Severity != SeverityError {
				t.Errorf("problem %+v, want field %s and %q", ps[0], want, tc.msg)
			}
		})
	}
	if w, ps := ParseWindow(map[string]string{"other": "x"}); w != nil || ps != nil {
		t.Errorf("no window: %v %v", w, ps)
	}
}
