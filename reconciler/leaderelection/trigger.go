package leaderelection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// TriggerAnnotation on the trigger Lease changes with every webhook any
// replica received.
const TriggerAnnotation = "stoker.dev/webhook"

// Trigger hands a push webhook from whichever replica received it (the
// Service picks any ready one) to the one that leads: the receiver writes
// TriggerAnnotation on a second Lease, "<lease>-webhook", and the leader
// watches that Lease and reconciles on every change. The write is done
// before the webhook is answered, so a push is never lost to a follower:
// when the write fails the sender is told to retry. A separate Lease keeps
// these writes from conflicting with the leader's renewals.
type Trigger struct {
	client    kubernetes.Interface
	namespace string
	name      string
	log       logrus.FieldLogger
	// CallTimeout bounds each API call; default 10s.
	CallTimeout time.Duration
	// Backoff is the wait between watch restarts.
	Backoff wait.Backoff
}

// NewTrigger returns the trigger Lease of the election opts describes.
func NewTrigger(client kubernetes.Interface, opts LeaderOptions) *Trigger {
	opts.defaults()
	return &Trigger{client: client, namespace: opts.Namespace, name: opts.Name + "-webhook", log: opts.Log,
		CallTimeout: 10 * time.Second,
		Backoff:     wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 1 << 30, Cap: 30 * time.Second}}
}

// Fire records one webhook on the trigger Lease, creating it if needed.
func (t *Trigger) Fire(ctx context.Context) error {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	value := time.Now().UTC().Format(time.RFC3339Nano) + "-" + hex.EncodeToString(b)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{TriggerAnnotation: value}}})
	cctx, cancel := context.WithTimeout(ctx, t.CallTimeout)
	defer cancel()
	leases := t.client.CoordinationV1().Leases(t.namespace)
	_, err := leases.Patch(cctx, t.name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(cctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Namespace: t.namespace, Name: t.name, Annotations: map[string]string{TriggerAnnotation: value}}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = leases.Patch(cctx, t.name, types.MergePatchType, patch, metav1.PatchOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("record webhook on lease %s/%s: %w", t.namespace, t.name, err)
	}
	return nil
}

// Watch calls poke whenever TriggerAnnotation changes, until ctx ends,
// and once when it first reads the Lease (a webhook recorded before the
// watch started is not lost; one extra reconcile is only a ref check). A
// change made while the watch was down (it is restarted with backoff) is
// seen when it comes back, by comparing with the last value seen.
func (t *Trigger) Watch(ctx context.Context, poke func()) {
	log := t.log.WithField("lease", t.namespace+"/"+t.name)
	last, first := "", true
	b := t.Backoff
	for ctx.Err() == nil {
		err := t.watchOnce(ctx, func(v string) {
			if first || v != last {
				poke()
			}
			last, first = v, false
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.WithError(err).Warn("watch of the webhook lease failed; restarting")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.Step()):
		}
	}
}

func (t *Trigger) watchOnce(ctx context.Context, seen func(string)) error {
	leases := t.client.CoordinationV1().Leases(t.namespace)
	cctx, cancel := context.WithTimeout(ctx, t.CallTimeout)
	l, err := leases.Get(cctx, t.name, metav1.GetOptions{})
	cancel()
	rv := ""
	switch {
	case apierrors.IsNotFound(err):
		seen("")
	case err != nil:
		return fmt.Errorf("read lease %s/%s: %w", t.namespace, t.name, err)
	default:
		seen(l.Annotations[TriggerAnnotation])
		rv = l.ResourceVersion
	}
	w, err := leases.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", t.name).String(),
		ResourceVersion: rv,
	})
	if err != nil {
		return fmt.Errorf("watch lease %s/%s: %w", t.namespace, t.name, err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if l, ok := ev.Object.(*coordinationv1.Lease); ok {
			seen(l.Annotations[TriggerAnnotation])
		}
	}
	return nil
}
