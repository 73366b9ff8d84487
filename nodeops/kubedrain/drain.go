package kubedrain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"

	"stoker.dev/stoker/nodeops"
)

// CordonedAnnotation marks a Node that Stoker cordoned, so that an agent
// restarted in the middle of a drain still knows the cordon is its own to
// undo, and a node an administrator cordoned is never uncordoned by Stoker.
const CordonedAnnotation = "stoker.dev/cordoned"

// Defaults for Options.
const (
	DefaultAttemptTimeout = 90 * time.Second
	DefaultCallTimeout    = 30 * time.Second
	DefaultPollInterval   = time.Second
)

// Clock is the time a Drainer sees: tests pass one whose Sleep returns at
// once and moves Now forward.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends, whichever is first.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DefaultBackoff doubles from 5s up to 2 minutes.
func DefaultBackoff(attempt int) time.Duration {
	return Backoff(5*time.Second, 2*time.Minute)(attempt)
}

// Backoff returns the wait before retry n (n >= 1) of a
// wait.Backoff that starts at first and doubles up to limit.
func Backoff(first, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		b := wait.Backoff{Duration: first, Factor: 2, Steps: math.MaxInt32, Cap: limit}
		d := first
		for i := 0; i < attempt; i++ {
			d = b.Step()
		}
		return d
	}
}

// Options configure a Drainer.
type Options struct {
	Client kubernetes.Interface
	// AttemptTimeout bounds one pass of evictions and waiting for the pods
	// to go; default 90s.
	AttemptTimeout time.Duration
	// CallTimeout bounds every single API call; default 30s.
	CallTimeout time.Duration
	// PollInterval is how often an attempt checks that evicted pods are
	// gone; default 1s.
	PollInterval time.Duration
	// Backoff is the wait before attempt n (n >= 1 is the first retry);
	// default DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// Clock sleeps the backoff; default RealClock.
	Clock Clock
	// Log receives one line per start, retry, block, finish and failure.
	Log logrus.FieldLogger
}

// Drainer cordons and drains Kubernetes nodes. It is safe for concurrent
// use on different nodes; calls for one node must not overlap.
type Drainer struct {
	opts Options

	mu sync.Mutex
	// drains remembers, per node, how many attempts of the drain in
	// progress failed, for the backoff. The drain's deadline is the
	// caller's: the agent keeps its start in its persisted state.
	drains map[string]*progress
}

type progress struct {
	failures int
}

var (
	_ nodeops.Drainer       = (*Drainer)(nil)
	_ nodeops.CordonChecker = (*Drainer)(nil)
	_ nodeops.NodeAnnotator = (*Annotator)(nil)
)

// New returns a Drainer with opts' zero fields defaulted.
func New(opts Options) *Drainer {
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Log == nil {
		opts.Log = logrus.StandardLogger()
	}
	return &Drainer{opts: opts, drains: map[string]*progress{}}
}

// Drain cordons node and makes one attempt at evicting its pods
// (DaemonSet pods stay, emptyDir data is deleted, unmanaged pods are
// deleted too, each pod gets its own grace period). When an earlier call
// of the same drain failed, it first waits out the backoff.
//
// A PodDisruptionBudget that allows no eviction returns a
// *nodeops.DrainBlockedError naming it; any other failure (an API error, a
// pod that does not go within AttemptTimeout) returns that error. Either
// way the caller reports it and calls Drain again: there is no final
// failure here, the caller owns the deadline.
//
// cordoned is true when Stoker made the node unschedulable, in this call or
// an earlier one (the Node carries CordonedAnnotation); a node already
// cordoned by someone else gives false.
func (d *Drainer) Drain(ctx context.Context, node string) (cordoned bool, err error) {
	log := d.opts.Log.WithFields(logrus.Fields{"node": node, "action": "drain"})
	p := d.progress(node)
	if p.failures > 0 {
		if err := d.opts.Clock.Sleep(ctx, d.opts.Backoff(p.failures)); err != nil {
			return false, fmt.Errorf("drain node %s: wait before retry: %w", node, err)
		}
	}
	cordoned, err = d.cordon(ctx, node)
	if err != nil {
		p.failures++
		return false, err
	}
	log.WithField("attempt", p.failures+1).Info("drain started")
	err = d.attempt(ctx, node)
	if err == nil {
		log.Info("drain finished")
		d.forget(node)
		return cordoned, nil
	}
	p.failures++
	switch {
	case ctx.Err() != nil:
		return cordoned, fmt.Errorf("drain node %s: %w", node, err)
	case errors.Is(err, nodeops.ErrDrainBlocked):
		log.WithError(err).Warn("drain blocked")
	default:
		log.WithError(err).Warn("drain attempt failed, will retry")
	}
	return cordoned, err
}

func (d *Drainer) progress(node string) *progress {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.drains[node]
	if p == nil {
		p = &progress{}
		d.drains[node] = p
	}
	return p
}

func (d *Drainer) forget(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.drains, node)
}

// call returns a context for one API call.
func (d *Drainer) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.opts.CallTimeout)
}

// cordon makes node unschedulable and marks it as cordoned by Stoker, in
// one patch guarded by the resourceVersion it read.
func (d *Drainer) cordon(ctx context.Context, node string) (bool, error) {
	for try := 0; ; try++ {
		cctx, cancel := d.call(ctx)
		n, err := d.opts.Client.CoreV1().Nodes().Get(cctx, node, metav1.GetOptions{})
		cancel()
		if err != nil {
			return false, fmt.Errorf("cordon node %s: get: %w", node, err)
		}
		if n.Annotations[CordonedAnnotation] == "true" {
			return true, nil
		}
		if n.Spec.Unschedulable {
			return false, nil
		}
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{
				"resourceVersion": n.ResourceVersion,
				"annotations":     map[string]string{CordonedAnnotation: "true"},
			},
			"spec": map[string]any{"unschedulable": true},
		})
		cctx, cancel = d.call(ctx)
		_, err = d.opts.Client.CoreV1().Nodes().Patch(cctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
		cancel()
		if apierrors.IsConflict(err) && try < 5 {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("cordon node %s: %w", node, err)
		}
		d.opts.Log.WithFields(logrus.Fields{"node": node, "action": "cordon"}).Info("node cordoned")
		return true, nil
	}
}

// CordonedByUs reports whether node carries Stoker's cordon mark.
func (d *Drainer) CordonedByUs(ctx context.Context, node string) (bool, error) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	n, err := d.opts.Client.CoreV1().Nodes().Get(cctx, node, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("read cordon of node %s: %w", node, err)
	}
	return n.Annotations[CordonedAnnotation] == "true", nil
}

// Uncordon makes node schedulable again and drops the cordoned mark, only
// when the mark is there: a cordon someone else made stays. The patch is
// guarded by the resourceVersion read.
func (d *Drainer) Uncordon(ctx context.Context, node string) error {
	d.forget(node)
	for try := 0; ; try++ {
		cctx, cancel := d.call(ctx)
		n, err := d.opts.Client.CoreV1().Nodes().Get(cctx, node, metav1.GetOptions{})
		cancel()
		if err != nil {
			return fmt.Errorf("uncordon node %s: get: %w", node, err)
		}
		if n.Annotations[CordonedAnnotation] != "true" {
			return nil
		}
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{
				"resourceVersion": n.ResourceVersion,
				"annotations":     map[string]any{CordonedAnnotation: nil},
			},
			"spec": map[string]any{"unschedulable": nil},
		})
		cctx, cancel = d.call(ctx)
		_, err = d.opts.Client.CoreV1().Nodes().Patch(cctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
		cancel()
		if apierrors.IsConflict(err) && try < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("uncordon node %s: %w", node, err)
		}
		d.opts.Log.WithFields(logrus.Fields{"node": node, "action": "uncordon"}).Info("node uncordoned")
		return nil
	}
}

// helper returns kubectl's drain helper with Stoker's policy, its API calls
// bounded by ctx.
func (d *Drainer) helper(ctx context.Context, out io.Writer) *drain.Helper {
	return &drain.Helper{
		Ctx:                 ctx,
		Client:              d.opts.Client,
		Force:               true,
		GracePeriodSeconds:  -1,
		IgnoreAllDaemonSets: true,
		DeleteEmptyDirData:  true,
		Timeout:             d.opts.AttemptTimeout,
		Out:                 out,
		ErrOut:              out,
	}
}

// attempt is one pass: evict every pod the drain policy selects, one
// eviction call at a time so a PodDisruptionBudget's refusal is seen (and
// named) at once, then wait for the evicted pods to be gone.
func (d *Drainer) attempt(ctx context.Context, node string) error {
	actx, cancel := context.WithTimeout(ctx, d.opts.AttemptTimeout)
	defer cancel()
	out := d.opts.Log.WithField("node", node).WriterLevel(logrus.DebugLevel)
	defer out.Close()

	cctx, ccancel := d.call(actx)
	list, errs := d.helper(cctx, out).GetPodsForDeletion(node)
	ccancel()
	if len(errs) > 0 {
		return fmt.Errorf("list pods to evict from node %s: %w", node, errors.Join(errs...))
	}
	if w := list.Warnings(); w != "" {
		d.opts.Log.WithFields(logrus.Fields{"node": node, "action": "drain"}).Warn(w)
	}
	var evicted []corev1.Pod
	for _, pod := range list.Pods() {
		cctx, ccancel := d.call(actx)
		err := d.helper(cctx, out).EvictPod(pod, policyv1.SchemeGroupVersion)
		ccancel()
		switch {
		case err == nil:
			evicted = append(evicted, pod)
		case apierrors.IsNotFound(err):
		case apierrors.IsTooManyRequests(err):
			return &nodeops.DrainBlockedError{Blocker: blocker(pod, err), Err: fmt.Errorf("evict pod %s/%s: %w", pod.Namespace, pod.Name, err)}
		default:
			return fmt.Errorf("evict pod %s/%s from node %s: %w", pod.Namespace, pod.Name, node, err)
		}
	}
	return d.waitGone(actx, node, evicted)
}

// waitGone waits until each pod is deleted (or replaced by a new pod of the
// same name).
func (d *Drainer) waitGone(ctx context.Context, node string, pods []corev1.Pod) error {
	for len(pods) > 0 {
		var left []corev1.Pod
		for _, pod := range pods {
			cctx, cancel := d.call(ctx)
			p, err := d.opts.Client.CoreV1().Pods(pod.Namespace).Get(cctx, pod.Name, metav1.GetOptions{})
			cancel()
			switch {
			case apierrors.IsNotFound(err):
			case err != nil && ctx.Err() != nil:
				return fmt.Errorf("wait for pod %s/%s to leave node %s: %w", pod.Namespace, pod.Name, node, ctx.Err())
			case err != nil:
				left = append(left, pod)
			case p.UID != pod.UID:
			default:
				left = append(left, pod)
			}
		}
		pods = left
		if len(pods) == 0 {
			return nil
		}
		t := time.NewTimer(d.opts.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for pod %s/%s (and %d more) to leave node %s: %w", pods[0].Namespace, pods[0].Name, len(pods)-1, node, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// blocker names the PodDisruptionBudget behind an eviction's 429, from the
// cause the apiserver attaches ("The disruption budget NAME ...").
func blocker(pod corev1.Pod, err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if det := status.Status().Details; det != nil {
			for _, c := range det.Causes {
				if c.Type != policyv1.DisruptionBudgetCause {
					continue
				}
				const prefix = "The disruption budget "
				if rest, ok := strings.CutPrefix(c.Message, prefix); ok {
					if f := strings.Fields(rest); len(f) > 0 {
						return "PodDisruptionBudget " + pod.Namespace + "/" + f[0]
					}
				}
			}
		}
	}
	return "PodDisruptionBudget of pod " + pod.Namespace + "/" + pod.Name
}
