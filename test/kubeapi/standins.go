package kubeapi

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// FakeKubelet stands in for the kubelet, which the test apiserver has
// none of: until the test ends it finishes the graceful deletion of
// evicted pods in namespace ns. Each call is bounded at 60 s.
func FakeKubelet(t testing.TB, c kubernetes.Interface, ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		zero := int64(0)
		for ctx.Err() == nil {
			lctx, lcancel := context.WithTimeout(ctx, 60*time.Second)
			if pods, err := c.CoreV1().Pods(ns).List(lctx, metav1.ListOptions{}); err == nil {
				for _, p := range pods.Items {
					if p.DeletionTimestamp != nil {
						_ = c.CoreV1().Pods(ns).Delete(lctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
					}
				}
			}
			lcancel()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}
