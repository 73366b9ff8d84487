package agent

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

// TestStartDelay: an idle agent spreads its first poll over StartSpread;
// one resuming an update, a --once run, or no spread polls at once.
func TestStartDelay(t *testing.T) {
	half := func(d time.Duration) time.Duration { return d / 2 }
	for _, tc := range []struct {
		name string
		o    Options
		st   State
		want time.Duration
	}{
		{"idle spreads", Options{StartSpread: time.Minute}, State{Current: "rendered-worker-1"}, 30 * time.Second},
		{"fresh node spreads", Options{StartSpread: time.Minute}, State{}, 30 * time.Second},
		{"no spread", Options{}, State{}, 0},
		{"resuming after reboot", Options{StartSpread: time.Minute}, State{Stage: StageRebooting}, 0},
		{"resuming an apply", Options{StartSpread: time.Minute}, State{Stage: StageDrained}, 0},
		{"once", Options{StartSpread: time.Minute, Once: true}, State{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := startDelay(tc.o, tc.st, half); got != tc.want {
				t.Fatalf("startDelay = %s, want %s", got, tc.want)
			}
		})
	}
}

// heldRepo wraps a real repository; its Commit waits until release is
// closed, as a push to a slow Git server does.
type heldRepo struct {
	gitsource.Repo
	entered chan struct{}
	release chan struct{}
}

func (h *heldRepo) Commit(ctx context.Context, req gitsource.CommitRequest) (string, error) {
	h.entered <- struct{}{}
	<-h.release
	return h.Repo.Commit(ctx, req)
}

// TestReporterUpdateDuringPush: Update returns while a push is in flight
// (the update loop calls it holding the agent's lock; with the reporter's
// lock held across Git, a slow push stalled every poll behind it), and
// the update is pushed after it.
func TestReporterUpdateDuringPush(t *testing.T) {
	srv := gitserver.New(t, gitserver.Daemon)
	must(t, srv.Create("r.git"))
	repo := &heldRepo{Repo: openRepo(t, srv.URL("r.git")), entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := NewReporter(ReporterOptions{Repo: repo, Node: "n1", Log: logrus.New()})
	r.Update(func(rep *api.Report) { rep.State = api.StateWorking })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Flush(ctx) }()
	select {
	case <-repo.entered:
	case <-ctx.Done():
		t.Fatal("no push started")
	}
	updated := make(chan struct{})
	go func() {
		r.Update(func(rep *api.Report) { rep.State = api.StateDone })
		close(updated)
	}()
	select {
	case <-updated:
	case <-time.After(time.Minute):
		t.Fatal("Update waited for the push in flight")
	}
	close(repo.release)
	must(t, <-done)
	must(t, r.Flush(ctx))
	if got := r.Wanted().State; got != api.StateDone {
		t.Fatalf("wanted state %s, want Done", got)
	}
	head, err := repo.Head(ctx, api.ReportsBranch("n1"))
	must(t, err)
	if _, err := repo.Fetch(ctx, api.ReportsBranch("n1")); err != nil {
		t.Fatal(err)
	}
	tree, err := repo.Tree(ctx, head)
	must(t, err)
	data, err := fs.ReadFile(tree, api.ReportFile)
	must(t, err)
	if !strings.Contains(string(data), "state: Done") {
		t.Fatalf("report on the branch:\n%s\nwant state Done", data)
	}
}
