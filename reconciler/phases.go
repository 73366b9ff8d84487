package reconciler

import (
	"time"

	"github.com/sirupsen/logrus"
)

// phases times one reconcile's steps, logged at debug level, so a slow
// loop says where its time went (check refs, fetch, render, read
// reports, plan, write stoker/status, write stoker/fleet).
type phases struct {
	now   func() time.Time
	start time.Time
	last  time.Time
	took  logrus.Fields
	// moved is how many report branches the loop fetched.
	moved int
}

func newPhases(now func() time.Time) *phases {
	t := now()
	return &phases{now: now, start: t, last: t, took: logrus.Fields{}}
}

// mark ends the phase named name.
func (p *phases) mark(name string) {
	t := p.now()
	p.took[name] = t.Sub(p.last).Round(time.Millisecond).String()
	p.last = t
}

func (p *phases) log(log logrus.FieldLogger, res *Result) {
	if res.Skipped {
		return
	}
	p.took["total"] = p.now().Sub(p.start).Round(time.Millisecond).String()
	p.took["reports_fetched"] = p.moved
	p.took["steps"] = len(res.Steps)
	log.WithFields(p.took).Debug("reconcile phases")
}
