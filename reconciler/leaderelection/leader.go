package leaderelection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ErrLostLeadership is returned when the Lease was lost while run was
// running: the process should exit and be restarted, as its state may be
// stale.
var ErrLostLeadership = errors.New("lost leadership")

// Defaults for LeaderOptions, client-go's usual values.
const (
	DefaultLeaseName     = "stoker-hub"
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// LeaderOptions configure RunWithLeaderElection.
type LeaderOptions struct {
	// Namespace of the Lease; default $POD_NAMESPACE, else the pod's own
	// namespace, else "default".
	Namespace string
	// Name of the Lease; default DefaultLeaseName.
	Name string
	// Identity of this candidate; default $POD_NAME or the host name, plus
	// a random suffix so a restarted process is a new candidate.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go; zero
	// means the Default values.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Log receives one line when leading starts and stops.
	Log logrus.FieldLogger
	// Observed, when set, is called after every successful read or write
	// of the Lease by this candidate: a follower that calls it is talking
	// to the apiserver and standing by (its liveness, see httpserver).
	Observed func()
	// Leading, when set, is called with true when this candidate starts
	// leading and with false when it stops.
	Leading func(bool)
}

func (o *LeaderOptions) defaults() {
	if o.Namespace == "" {
		o.Namespace = os.Getenv("POD_NAMESPACE")
	}
	if o.Namespace == "" {
		if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
			o.Namespace = strings.TrimSpace(string(b))
		}
	}
	if o.Namespace == "" {
		o.Namespace = metav1.NamespaceDefault
	}
	if o.Name == "" {
		o.Name = DefaultLeaseName
	}
	if o.Identity == "" {
		id := os.Getenv("POD_NAME")
		if id == "" {
			id, _ = os.Hostname()
		}
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Identity = id + "_" + hex.EncodeToString(b)
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
}

// RunWithLeaderElection waits until this candidate holds the Lease, then
// calls run with a context that ends when leadership is lost or ctx ends.
// It returns run's error; nil when ctx ends (before or while leading);
// ErrLostLeadership (wrapped) when the Lease was lost while run ran. The
// Lease is released on return, so another candidate takes over at once.
func RunWithLeaderElection(ctx context.Context, client kubernetes.Interface, opts LeaderOptions, run func(ctx context.Context) error) error {
	opts.defaults()
	log := opts.Log.WithFields(logrus.Fields{"lease": opts.Namespace + "/" + opts.Name, "identity": opts.Identity})
	lock := &watchedLock{observed: opts.Observed, Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.Name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: opts.Identity},
	}}
	electCtx, stopElecting := context.WithCancel(ctx)
	defer stopElecting()
	var (
		runErr  error
		runDone = make(chan struct{})
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   opts.LeaseDuration,
		RenewDeadline:   opts.RenewDeadline,
		RetryPeriod:     opts.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            opts.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				defer close(runDone)
				log.Info("leading")
				if opts.Leading != nil {
					opts.Leading(true)
					defer opts.Leading(false)
				}
				runErr = run(leadCtx)
				// run finished by itself: stop renewing and release.
				stopElecting()
			},
			OnStoppedLeading: func() { log.Info("stopped leading") },
		},
	})
	if err != nil {
		return fmt.Errorf("set up leader election on lease %s/%s: %w", opts.Namespace, opts.Name, err)
	}
	le.Run(electCtx)
	if !lock.acquired.Load() {
		// Only an ended context stops the wait for the Lease.
		return nil
	}
	// Once the Lease was taken, Run has started OnStartedLeading.
	<-runDone
	if runErr != nil {
		return runErr
	}
	if electCtx.Err() == nil {
		return fmt.Errorf("lease %s/%s: %w", opts.Namespace, opts.Name, ErrLostLeadership)
	}
	return nil
}

// watchedLock records whether this candidate ever wrote itself as the
// holder: then client-go has started (or is starting) the run callback.
// It also tells Observed of every successful Lease call.
type watchedLock struct {
	resourcelock.Interface
	acquired atomic.Bool
	observed func()
}

func (l *watchedLock) seen(err error) {
	if err == nil && l.observed != nil {
		l.observed()
	}
}

func (l *watchedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, raw, err := l.Interface.Get(ctx)
	l.seen(err)
	return r, raw, err
}

func (l *watchedLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, r)
	if err == nil && r.HolderIdentity == l.Identity() {
		l.acquired.Store(true)
	}
	l.seen(err)
	return err
}

func (l *watchedLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, r)
	if err == nil && r.HolderIdentity == l.Identity() {
		l.acquired.Store(true)
	}
	l.seen(err)
	return err
}
