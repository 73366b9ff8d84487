package leaderelection_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"stoker.dev/stoker/reconciler/leaderelection"
	"stoker.dev/stoker/test/kubeapi"
)

var srv *kubeapi.Server

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m, &srv)) }

// candidate runs RunWithLeaderElection in the background and records when
// its run function leads.
type candidate struct {
	id      string
	cancel  context.CancelFunc
	leading chan struct{} // closed when run starts
	done    chan error    // RunWithLeaderElection's result
}

func start(t *testing.T, opts leaderelection.LeaderOptions, id string, active *activeSet) *candidate {
	t.Helper()
	c := srv.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	cand := &candidate{id: id, cancel: cancel, leading: make(chan struct{}), done: make(chan error, 1)}
	opts.Identity = id
	go func() {
		cand.done <- leaderelection.RunWithLeaderElection(ctx, c, opts, func(ctx context.Context) error {
			active.enter(t, id)
			defer active.leave(id)
			close(cand.leading)
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-cand.done:
		case <-time.After(2 * time.Minute):
			t.Errorf("candidate %s did not stop", id)
		}
	})
	return cand
}

// activeSet fails the test if two runs overlap.
type activeSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (a *activeSet) enter(t *testing.T, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for other := range a.ids {
		t.Errorf("%s leads while %s still leads", id, other)
	}
	a.ids[id] = true
}

func (a *activeSet) leave(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.ids, id)
}

func TestTwoCandidatesOneLeader(t *testing.T) {
	kubeapi.Need(t, srv)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	opts := leaderelection.LeaderOptions{
		Namespace: "default", Name: "stoker-hub-test",
		// A renew deadline a loaded machine cannot miss: with 2s, a slow
		// apiserver round trip lost the lease and the follower led too.
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 200 * time.Millisecond,
		Log: log,
	}
	active := &activeSet{ids: map[string]bool{}}
	a := start(t, opts, "hub-a", active)
	b := start(t, opts, "hub-b", active)

	var leader, follower *candidate
	select {
	case <-a.leading:
		leader, follower = a, b
	case <-b.leading:
		leader, follower = b, a
	case <-time.After(2 * time.Minute):
		t.Fatal("no candidate became leader within 2m")
	}
	// The follower must not lead while the leader renews (several lease
	// durations).
	select {
	case <-follower.leading:
		t.Fatalf("%s leads too while %s holds the lease", follower.id, leader.id)
	case <-time.After(2 * opts.LeaseDuration):
	}
	lease, err := srv.Client(t).CoordinationV1().Leases("default").Get(context.Background(), opts.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != leader.id {
		t.Errorf("lease holder = %v, want %s", lease.Spec.HolderIdentity, leader.id)
	}

	// The leader stops: it releases the lease and the follower takes over.
	leader.cancel()
	select {
	case err := <-leader.done:
		if err != nil {
			t.Errorf("stopped leader returned %v, want nil", err)
		}
		leader.done <- err // for Cleanup
	case <-time.After(2 * time.Minute):
		t.Fatal("leader did not return after its context ended")
	}
	select {
	case <-follower.leading:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s did not take over after %s stopped", follower.id, leader.id)
	}
}

// TestRunErrorReleases: run's error is returned and the lease is released
// so another candidate can lead at once.
func TestRunErrorReleases(t *testing.T) {
	kubeapi.Need(t, srv)
	c := srv.Client(t)
	opts := leaderelection.LeaderOptions{
		Namespace: "default", Name: "stoker-hub-error",
		LeaseDuration: 30 * time.Second, RenewDeadline: 20 * time.Second, RetryPeriod: 200 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	boom := errors.New("boom")
	opts.Identity = "first"
	err := leaderelection.RunWithLeaderElection(ctx, c, opts, func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("RunWithLeaderElection = %v, want run's error", err)
	}
	// Without the release the second would wait the 30s lease duration.
	opts.Identity = "second"
	began := time.Now()
	err = leaderelection.RunWithLeaderElection(ctx, c, opts, func(context.Context) error { return nil })
	if err != nil {
		t.Fatalf("second candidate: %v", err)
	}
	if waited := time.Since(began); waited >= opts.LeaseDuration {
		t.Errorf("second candidate waited %v: the first did not release the lease", waited)
	}
}
