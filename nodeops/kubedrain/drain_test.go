package kubedrain_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/nodeops/kubedrain"
	"stoker.dev/stoker/test/kubeapi"
)

var srv *kubeapi.Server

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m, &srv)) }

// fakeClock makes backoff sleeps instant and moves Now forward by them.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.WarnLevel)
	return l
}

func createNode(t *testing.T, c kubernetes.Interface, name string, unschedulable bool) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Unschedulable: unschedulable}}
	if _, err := c.CoreV1().Nodes().Create(ctxT(t), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
}

func createNamespace(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.CoreV1().Namespaces().Create(ctxT(t), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// createRunningPod creates a pod bound to node and marks it Running and
// Ready, as a kubelet would (Pending pods ignore PodDisruptionBudgets).
func createRunningPod(t *testing.T, c kubernetes.Interface, pod *corev1.Pod, node string) *corev1.Pod {
	t.Helper()
	ctx := ctxT(t)
	pod.Spec.NodeName = node
	pod.Spec.Containers = []corev1.Container{{Name: "c", Image: "example.invalid/app:1"}}
	p, err := c.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	p, err = c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("mark pod %s/%s running: %v", pod.Namespace, pod.Name, err)
	}
	return p
}

// setPDBStatus stands in for the disruption controller.
func setPDBStatus(t *testing.T, c kubernetes.Interface, ns, name string, allowed int32) {
	t.Helper()
	ctx := ctxT(t)
	pdb, err := c.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pdb: %v", err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation,
		DisruptionsAllowed: allowed,
		CurrentHealthy:     1 + allowed,
		DesiredHealthy:     1,
		ExpectedPods:       1 + allowed,
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set pdb status: %v", err)
	}
}

func createPDB(t *testing.T, c kubernetes.Interface, ns, name string, selector map[string]string) {
	t.Helper()
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one,
			Selector:     &metav1.LabelSelector{MatchLabels: selector},
		},
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets(ns).Create(ctxT(t), pdb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pdb: %v", err)
	}
	setPDBStatus(t, c, ns, name, 0)
}

func getNode(t *testing.T, c kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	n, err := c.CoreV1().Nodes().Get(ctxT(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

func podExists(t *testing.T, c kubernetes.Interface, ns, name string) bool {
	t.Helper()
	_, err := c.CoreV1().Pods(ns).Get(ctxT(t), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return true
}

// TestDrainRespectsPDB walks the whole cycle: cordon, evict, a PDB blocks,
// the PDB allows, the drain finishes, uncordon.
func TestDrainRespectsPDB(t *testing.T) {
	kubeapi.Need(t, srv)
	c := srv.Client(t)
	const node, ns = "drain-pdb-node", "drain-pdb"
	createNode(t, c, node, false)
	createNamespace(t, c, ns)
	kubeapi.FakeKubelet(t, c, ns)

	// A DaemonSet pod stays; a pod with emptyDir data and an unmanaged pod
	// go; the web pod is guarded by a PDB.
	ds, err := c.AppsV1().DaemonSets(ns).Create(ctxT(t), &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "logger"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "logger"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "logger"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/logger:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create daemonset: %v", err)
	}
	isController := true
	createRunningPod(t, c, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: "logger-x", Labels: map[string]string{"app": "logger"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: &isController}},
	}}, node)
	scratch := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scratch"}}
	scratch.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	createRunningPod(t, c, scratch, node)
	createRunningPod(t, c, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-0", Labels: map[string]string{"app": "web"}}}, node)
	createPDB(t, c, ns, "web", map[string]string{"app": "web"})

	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	d := kubedrain.New(kubedrain.Options{Client: c, Clock: clock, PollInterval: 50 * time.Millisecond, Log: quietLog()})

	cordoned, err := d.Drain(ctxT(t), node)
	var blocked *nodeops.DrainBlockedError
	if !errors.As(err, &blocked) || !errors.Is(err, nodeops.ErrDrainBlocked) {
		t.Fatalf("Drain with a blocking PDB = %v, want a DrainBlockedError", err)
	}
	if blocked.Blocker != "PodDisruptionBudget "+ns+"/web" {
		t.Errorf("Blocker = %q, want the PDB %s/web", blocked.Blocker, ns)
	}
	if !cordoned {
		t.Errorf("cordoned = false, want true (the node was schedulable)")
	}
	n := getNode(t, c, node)
	if !n.Spec.Unschedulable || n.Annotations[kubedrain.CordonedAnnotation] != "true" {
		t.Errorf("node after blocked drain: unschedulable=%v annotations=%v, want cordoned by stoker", n.Spec.Unschedulable, n.Annotations)
	}
	if !podExists(t, c, ns, "web-0") {
		t.Errorf("web-0 was removed although its PDB allowed no disruption")
	}

	setPDBStatus(t, c, ns, "web", 1)
	cordoned, err = d.Drain(ctxT(t), node)
	if err != nil {
		t.Fatalf("Drain after the PDB allows: %v", err)
	}
	if !cordoned {
		t.Errorf("second Drain: cordoned = false, want true (stoker's cordon from the first call)")
	}
	if len(clock.slept) != 1 || clock.slept[0] != kubedrain.DefaultBackoff(1) {
		t.Errorf("backoff before the retry = %v, want [%v]", clock.slept, kubedrain.DefaultBackoff(1))
	}
	for _, tc := range []struct {
		pod  string
		want bool
	}{{"web-0", false}, {"scratch", false}, {"logger-x", true}} {
		if got := podExists(t, c, ns, tc.pod); got != tc.want {
			t.Errorf("after drain, pod %s exists = %v, want %v", tc.pod, got, tc.want)
		}
	}

	if err := d.Uncordon(ctxT(t), node); err != nil {
		t.Fatalf("Uncordon: %v", err)
	}
	n = getNode(t, c, node)
	if n.Spec.Unschedulable {
		t.Errorf("node still unschedulable after Uncordon")
	}
	if _, ok := n.Annotations[kubedrain.CordonedAnnotation]; ok {
		t.Errorf("cordoned mark left after Uncordon: %v", n.Annotations)
	}
}

// TestDrainKeepsForeignCordon: a node an administrator cordoned is not
// reported as cordoned by Stoker, so Stoker never uncordons it.
func TestDrainKeepsForeignCordon(t *testing.T) {
	kubeapi.Need(t, srv)
	c := srv.Client(t)
	const node = "drain-foreign-cordon"
	createNode(t, c, node, true)
	d := kubedrain.New(kubedrain.Options{Client: c, Log: quietLog()})
	cordoned, err := d.Drain(ctxT(t), node)
	if err != nil {
		t.Fatalf("Drain of an empty node: %v", err)
	}
	if cordoned {
		t.Errorf("cordoned = true for a node that was already unschedulable")
	}
	if n := getNode(t, c, node); !n.Spec.Unschedulable || n.Annotations[kubedrain.CordonedAnnotation] != "" {
		t.Errorf("node = unschedulable %v, annotations %v; want it left as the administrator set it", n.Spec.Unschedulable, n.Annotations)
	}
}

// TestDrainRetries: a drain that cannot finish is never final here: every
// call makes one attempt and returns what blocks it (a PDB, a pod that does
// not go), the backoff before each retry grows (a wait.Backoff), and the
// deadline is the caller's (agent.DefaultDrainDeadline, persisted).
func TestDrainRetries(t *testing.T) {
	kubeapi.Need(t, srv)
	c := srv.Client(t)
	for _, tc := range []struct {
		name      string
		pdb       bool
		blocked   bool
		wantInErr string
	}{
		// A PDB that never allows: each call returns DrainBlockedError.
		{name: "pdb", pdb: true, blocked: true, wantInErr: "PodDisruptionBudget drain-retry-pdb/web"},
		// A pod that never terminates (no kubelet): each attempt times out.
		{name: "stuck", wantInErr: "wait for pod drain-retry-stuck/web-0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node, ns := "drain-retry-"+tc.name, "drain-retry-"+tc.name
			createNode(t, c, node, false)
			createNamespace(t, c, ns)
			createRunningPod(t, c, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-0", Labels: map[string]string{"app": "web"}}}, node)
			if tc.pdb {
				createPDB(t, c, ns, "web", map[string]string{"app": "web"})
			}
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			d := kubedrain.New(kubedrain.Options{
				Client: c, Clock: clock, Backoff: kubedrain.Backoff(time.Second, 4*time.Second),
				AttemptTimeout: 500 * time.Millisecond, PollInterval: 50 * time.Millisecond, Log: quietLog(),
			})
			for call := 1; call <= 4; call++ {
				cordoned, err := d.Drain(ctxT(t), node)
				if err == nil {
					t.Fatalf("call %d: Drain succeeded although the node cannot be drained", call)
				}
				if errors.Is(err, nodeops.ErrDrainBlocked) != tc.blocked {
					t.Errorf("call %d: Drain = %v, want blocked %v", call, err, tc.blocked)
				}
				if !strings.Contains(err.Error(), tc.wantInErr) {
					t.Errorf("call %d: error %q does not name %q", call, err, tc.wantInErr)
				}
				if !cordoned {
					t.Errorf("call %d: cordoned = false, want true", call)
				}
			}
			want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
			if fmt.Sprint(clock.slept) != fmt.Sprint(want) {
				t.Errorf("backoff before the retries = %v, want %v", clock.slept, want)
			}
			if !podExists(t, c, ns, "web-0") && tc.pdb {
				t.Errorf("web-0 was removed although its PDB allowed no disruption")
			}
		})
	}
}

// TestUncordonOnlyOurs: Uncordon of a node someone else cordoned leaves it
// cordoned; CordonedByUs tells the two apart.
func TestUncordonOnlyOurs(t *testing.T) {
	kubeapi.Need(t, srv)
	c := srv.Client(t)
	const node = "uncordon-foreign"
	createNode(t, c, node, true)
	d := kubedrain.New(kubedrain.Options{Client: c, Log: quietLog()})
	if mine, err := d.CordonedByUs(ctxT(t), node); err != nil || mine {
		t.Fatalf("CordonedByUs of an administrator's cordon = %v, %v; want false", mine, err)
	}
	if err := d.Uncordon(ctxT(t), node); err != nil {
		t.Fatal(err)
	}
	if n := getNode(t, c, node); !n.Spec.Unschedulable {
		t.Errorf("Uncordon undid a cordon Stoker did not make")
	}
}

func TestAnnotate(t *testing.T) {
	kubeapi.Need(t, srv)
	c := srv.Client(t)
	const node = "annotate-node"
	createNode(t, c, node, false)
	a := &kubedrain.Annotator{Client: c}
	steps := []struct {
		name string
		set  map[string]string
		want map[string]string
	}{
		{
			name: "working",
			set: map[string]string{
				api.NodeStateAnnotation:         "Working",
				api.NodeCurrentConfigAnnotation: "rendered-worker-1",
				api.NodeDesiredConfigAnnotation: "rendered-worker-2",
				api.NodeReasonAnnotation:        "drain blocked by PodDisruptionBudget default/web",
			},
			want: map[string]string{
				api.NodeStateAnnotation:         "Working",
				api.NodeCurrentConfigAnnotation: "rendered-worker-1",
				api.NodeDesiredConfigAnnotation: "rendered-worker-2",
				api.NodeReasonAnnotation:        "drain blocked by PodDisruptionBudget default/web",
			},
		},
		{
			name: "done clears the reason",
			set: map[string]string{
				api.NodeStateAnnotation:         "Done",
				api.NodeCurrentConfigAnnotation: "rendered-worker-2",
				api.NodeReasonAnnotation:        "",
			},
			want: map[string]string{
				api.NodeStateAnnotation:         "Done",
				api.NodeCurrentConfigAnnotation: "rendered-worker-2",
				api.NodeDesiredConfigAnnotation: "rendered-worker-2",
			},
		},
	}
	for _, st := range steps {
		if err := a.Annotate(ctxT(t), node, st.set); err != nil {
			t.Fatalf("%s: Annotate: %v", st.name, err)
		}
		got := map[string]string{}
		for k, v := range getNode(t, c, node).Annotations {
			if strings.HasPrefix(k, "stoker.dev/") {
				got[k] = v
			}
		}
		if len(got) != len(st.want) {
			t.Errorf("%s: annotations = %v, want %v", st.name, got, st.want)
		}
		for k, v := range st.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", st.name, k, got[k], v)
			}
		}
	}
	if err := a.Annotate(ctxT(t), "no-such-node", map[string]string{api.NodeStateAnnotation: "Done"}); !apierrors.IsNotFound(err) {
		t.Errorf("Annotate of a missing node = %v, want NotFound", err)
	}
}
