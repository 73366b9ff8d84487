package leaderelection_test

import (
	"context"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/reconciler/leaderelection"
	"stoker.dev/stoker/test/kubeapi"
)

// TestTriggerReachesTheWatcher: webhooks recorded by any replica (Fire)
// reach the leader's Watch, including one recorded before the watch
// started.
func TestTriggerReachesTheWatcher(t *testing.T) {
	kubeapi.Need(t, srv)
	c := srv.Client(t)
	opts := leaderelection.LeaderOptions{Namespace: "default", Name: "trigger-test", Log: quietLog()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	follower := leaderelection.NewTrigger(c, opts)
	if err := follower.Fire(ctx); err != nil { // creates the Lease
		t.Fatal(err)
	}
	pokes := make(chan struct{}, 10)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		leaderelection.NewTrigger(c, opts).Watch(wctx, func() { pokes <- struct{}{} })
	}()
	defer func() { stop(); <-done }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-pokes:
		case <-ctx.Done():
			t.Fatalf("%s: no poke", what)
		}
	}
	wait("webhook recorded before the watch")
	for i := 0; i < 3; i++ {
		if err := follower.Fire(ctx); err != nil {
			t.Fatal(err)
		}
		wait("webhook recorded by a follower")
	}
}

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	return l
}
