package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// statesRepo records the state of every report pushed through it.
type statesRepo struct {
	gitsource.Repo
	pushed chan string
}

func (s *statesRepo) Commit(ctx context.Context, req gitsource.CommitRequest) (string, error) {
	c, err := s.Repo.Commit(ctx, req)
	if err == nil {
		for _, l := range strings.Split(string(req.Changes[api.ReportFile]), "\n") {
			if v, ok := strings.CutPrefix(l, "state: "); ok {
				s.pushed <- v
			}
		}
	}
	return c, err
}

// TestReporterWorkingSettles: an update that ends within the settle time
// pushes its outcome only (one report push per node and rollout step,
// not Working then Done: docs/scale.md), and a Working report that stays
// wanted longer is pushed once the settle time is over.
func TestReporterWorkingSettles(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	must(t, srv.Create("r.git"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next := func(repo *statesRepo) string {
		select {
		case s := <-repo.pushed:
			return s
		case <-time.After(time.Minute):
			t.Fatal("no report pushed in a minute")
			return ""
		}
	}

	// Working, then Done well within the settle time (an hour).
	quick := &statesRepo{Repo: openRepo(t, srv.URL("r.git")), pushed: make(chan string, 10)}
	r := NewReporter(ReporterOptions{Repo: quick, Node: "n1", Settle: time.Hour, Log: logrus.New()})
	go r.Run(ctx)
	r.Update(func(rep *api.Report) { rep.State = api.StateWorking })
	r.Update(func(rep *api.Report) { rep.State = api.StateDone })
	if got := next(quick); got != string(api.StateDone) {
		t.Fatalf("first report pushed %s, want Done (Working settles an hour)", got)
	}

	// Working for longer than the settle time: pushed.
	slow := &statesRepo{Repo: openRepo(t, srv.URL("r.git")), pushed: make(chan string, 10)}
	r2 := NewReporter(ReporterOptions{Repo: slow, Node: "n2", Settle: 10 * time.Millisecond, Log: logrus.New()})
	go r2.Run(ctx)
	r2.Update(func(rep *api.Report) { rep.State = api.StateWorking })
	if got := next(slow); got != string(api.StateWorking) {
		t.Fatalf("report pushed %s, want Working", got)
	}

	// Flush does not wait for the settle time (before a reboot).
	flushed := &statesRepo{Repo: openRepo(t, srv.URL("r.git")), pushed: make(chan string, 10)}
	r3 := NewReporter(ReporterOptions{Repo: flushed, Node: "n3", Settle: time.Hour, Log: logrus.New()})
	r3.Update(func(rep *api.Report) { rep.State = api.StateWorking })
	fctx, fcancel := context.WithTimeout(ctx, time.Minute)
	defer fcancel()
	must(t, r3.Flush(fctx))
	if got := next(flushed); got != string(api.StateWorking) {
		t.Fatalf("flushed %s, want Working", got)
	}
}
