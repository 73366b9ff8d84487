package api

import (
	"fmt"
	"strings"
	"time"
	// Time zones come from Go's embedded tzdata, so a window means the
	// same on every hub, with or without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Maintenance window annotations on a MachineConfigPool (a Stoker
// extension; MCO has none). Only the schedule is required.
const (
	// WindowAnnotation is the window's start, a five-field cron schedule
	// (minute hour day-of-month month day-of-week) or a descriptor such as
	// @daily, in the window's time zone.
	WindowAnnotation = "stoker.dev/maintenance-window"
	// WindowDurationAnnotation is how long each window stays open (a Go
	// duration, elapsed time: "4h", "90m"); required with a window.
	WindowDurationAnnotation = "stoker.dev/maintenance-window-duration"
	// WindowTimeZoneAnnotation is the IANA time zone of the schedule
	// ("Europe/Berlin"); default UTC.
	WindowTimeZoneAnnotation = "stoker.dev/maintenance-window-time-zone"
	// WindowAppliesToAnnotation is "disruptive" (default: only updates
	// that drain or reboot wait for the window) or "all".
	WindowAppliesToAnnotation = "stoker.dev/maintenance-window-applies-to"
)

// Window scopes.
const (
	WindowDisruptive = "disruptive"
	WindowAll        = "all"
)

// MaxWindowDuration bounds a window's duration (a month).
const MaxWindowDuration = 31 * 24 * time.Hour

// windowMargin is how far a wall-clock time can sit from the same reading
// of UTC on either side of a DST change; starts are looked up that much
// early so none is missed.
const windowMargin = 4 * time.Hour

// maxWindowSteps bounds every walk over a schedule's starts;
// maxChainedOpenings bounds how many overlapping openings State joins
// (beyond them, Closes is a lower bound).
const (
	maxWindowSteps     = 100000
	maxChainedOpenings = 1000
)

// MaintenanceWindow is a pool's parsed window. Starts follow the wall
// clock of the time zone; across DST changes a start that falls in the
// skipped hour opens when the clocks jump (02:30 on a spring-forward day
// opens at 03:00), and a start in the repeated hour opens once, at its
// first occurrence. The duration is elapsed time.
type MaintenanceWindow struct {
	Schedule  string
	Duration  time.Duration
	TimeZone  string
	AppliesTo string
	sched     cron.Schedule
	loc       *time.Location
}

var windowParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func windowField(annotation string) string { return "metadata.annotations[" + annotation + "]" }

// ParseWindow reads a pool's window annotations: nil and no problems when
// the pool has none; every problem at once, each at its annotation's field.
func ParseWindow(annotations map[string]string) (*MaintenanceWindow, Problems) {
	var ps Problems
	spec, ok := annotations[WindowAnnotation]
	if !ok {
		for _, a := range []string{WindowDurationAnnotation, WindowTimeZoneAnnotation, WindowAppliesToAnnotation} {
			if _, set := annotations[a]; set {
				problemf(&ps, windowField(a), "needs %s (the window's start)", WindowAnnotation)
			}
		}
		return nil, ps
	}
	w := &MaintenanceWindow{Schedule: spec, TimeZone: "UTC", AppliesTo: WindowDisruptive, loc: time.UTC}
	switch s := strings.TrimSpace(spec); {
	case s == "":
		problemf(&ps, windowField(WindowAnnotation), "empty schedule")
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		problemf(&ps, windowField(WindowAnnotation), "%q: set the time zone with %s, not in the schedule", spec, WindowTimeZoneAnnotation)
	case strings.HasPrefix(s, "@every"):
		problemf(&ps, windowField(WindowAnnotation), "%q: a window starts at wall-clock times; @every is not one", spec)
	default:
		sched, err := windowParser.Parse(s)
		if err != nil {
			problemf(&ps, windowField(WindowAnnotation), "%q is not a cron schedule (minute hour day-of-month month day-of-week): %v", spec, err)
			break
		}
		// The parser puts its schedules in time.Local; starts are computed
		// on a UTC wall clock and mapped to the zone here.
		if ss, ok := sched.(*cron.SpecSchedule); ok {
			ss.Location = time.UTC
		}
		if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
			problemf(&ps, windowField(WindowAnnotation), "%q never starts", spec)
			break
		}
		w.sched = sched
	}
	if d, ok := annotations[WindowDurationAnnotation]; !ok {
		problemf(&ps, windowField(WindowDurationAnnotation), "required with %s", WindowAnnotation)
	} else if dur, err := time.ParseDuration(d); err != nil {
		problemf(&ps, windowField(WindowDurationAnnotation), "%q is not a duration (e.g. 4h, 90m): %v", d, err)
	} else if dur < time.Minute || dur > MaxWindowDuration {
		problemf(&ps, windowField(WindowDurationAnnotation), "%q is not between 1m and %s", d, MaxWindowDuration)
	} else {
		w.Duration = dur
	}
	if tz, ok := annotations[WindowTimeZoneAnnotation]; ok {
		loc, err := time.LoadLocation(tz)
		switch {
		case tz == "" || tz == "Local":
			problemf(&ps, windowField(WindowTimeZoneAnnotation), "%q: name an IANA time zone (e.g. Europe/Berlin, UTC)", tz)
		case err != nil:
			problemf(&ps, windowField(WindowTimeZoneAnnotation), "%q is not an IANA time zone: %v", tz, err)
		default:
			w.TimeZone, w.loc = tz, loc
		}
	}
	if a, ok := annotations[WindowAppliesToAnnotation]; ok {
		if a != WindowDisruptive && a != WindowAll {
			problemf(&ps, windowField(WindowAppliesToAnnotation), "%q is not one of %s, %s", a, WindowDisruptive, WindowAll)
		} else {
			w.AppliesTo = a
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return w, nil
}

// WindowState is a window seen at one instant.
type WindowState struct {
	Open bool
	// Closes is when the open window closes (zero when closed).
	Closes time.Time
	// Opens is the next opening after now, or after Closes when open
	// (zero when the schedule has none within the parser's reach).
	Opens time.Time
}

// State says whether the window is open at now, until when, and when it
// opens next. Overlapping openings count as one.
func (w *MaintenanceWindow) State(now time.Time) WindowState {
	next := w.starts(now.Add(-w.Duration))
	s := next()
	if s.IsZero() || s.After(now) {
		return WindowState{Opens: w.in(s)}
	}
	end := s.Add(w.Duration)
	for i := 0; i < maxChainedOpenings; i++ {
		n := next()
		if n.IsZero() || n.After(end) {
			return WindowState{Open: true, Closes: w.in(end), Opens: w.in(n)}
		}
		if e := n.Add(w.Duration); e.After(end) {
			end = e
		}
	}
	return WindowState{Open: true, Closes: w.in(end)}
}

// Gates says whether the window holds back an update whose strongest
// action is action ("" = unknown, which counts as disruptive).
func (w *MaintenanceWindow) Gates(action ActionType) bool {
	return w.AppliesTo == WindowAll || Disruptive(action)
}

// Disruptive reports whether an update with this action drains or reboots
// the node ("" = unknown: assumed to).
func Disruptive(action ActionType) bool {
	return action == "" || action.Strength() >= ActionDrain.Strength()
}

func (w *MaintenanceWindow) in(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(w.loc)
}

// starts returns an iterator over the window's starts strictly after
// after, in order; it returns the zero time when there are no more.
func (w *MaintenanceWindow) starts(after time.Time) func() time.Time {
	l := after.In(w.loc)
	x := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC).Add(-windowMargin)
	return func() time.Time {
		for i := 0; i < maxWindowSteps; i++ {
			x = w.sched.Next(x)
			if x.IsZero() {
				return x
			}
			if r := w.instant(x); r.After(after) {
				return r
			}
		}
		return time.Time{}
	}
}

// instant maps a wall-clock reading (carried in a UTC time) to the instant
// it names in the window's zone: the first of two in a repeated hour, the
// moment the clocks jumped for one in a skipped hour. Go's time.Date
// leaves both cases unspecified, so they are decided here.
func (w *MaintenanceWindow) instant(u time.Time) time.Time {
	var best time.Time
	for _, probe := range []time.Time{u.Add(-24 * time.Hour), u.Add(24 * time.Hour)} {
		_, off := probe.In(w.loc).Zone()
		t := u.Add(-time.Duration(off) * time.Second)
		l := t.In(w.loc)
		same := l.Year() == u.Year() && l.YearDay() == u.YearDay() && l.Hour() == u.Hour() && l.Minute() == u.Minute()
		if same && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	if !best.IsZero() {
		return best
	}
	// Skipped: read with the offset before the jump it lands after the
	// jump; the zone it lands in began at the jump.
	_, off := u.Add(-24 * time.Hour).In(w.loc).Zone()
	start, _ := u.Add(-time.Duration(off) * time.Second).In(w.loc).ZoneBounds()
	return start
}

// String is the window as `stoker diff` and `stoker status` show it.
func (w *MaintenanceWindow) String() string {
	s := fmt.Sprintf("%q for %s (%s)", w.Schedule, w.Duration, w.TimeZone)
	if w.AppliesTo == WindowAll {
		s += ", all updates"
	} else {
		s += ", disruptive updates"
	}
	return s
}

// WindowStatus is a pool's window on stoker/fleet.
type WindowStatus struct {
	Schedule  string `json:"schedule"`
	Duration  string `json:"duration"`
	TimeZone  string `json:"timeZone"`
	AppliesTo string `json:"appliesTo"`
	Open      bool   `json:"open"`
	// Closes is when the open window closes; Opens the next opening.
	Closes *time.Time `json:"closes,omitempty"`
	Opens  *time.Time `json:"opens,omitempty"`
}

// Status is the window's state at now as stoker/fleet records it, times
// truncated to the second in the window's zone.
func (w *MaintenanceWindow) Status(now time.Time) *WindowStatus {
	st := w.State(now)
	ws := &WindowStatus{Schedule: w.Schedule, Duration: w.Duration.String(), TimeZone: w.TimeZone, AppliesTo: w.AppliesTo, Open: st.Open}
	if !st.Closes.IsZero() {
		c := st.Closes.Truncate(time.Second)
		ws.Closes = &c
	}
	if !st.Opens.IsZero() {
		o := st.Opens.Truncate(time.Second)
		ws.Opens = &o
	}
	return ws
}
