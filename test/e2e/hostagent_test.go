//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/test/nspawn"
)

// hostAgent runs `stoker agent` outside a systemd-nspawn machine the way
// the chart's DaemonSet runs it on a node: --root is the machine's root
// (/proc/<leader>/root, its /run and /proc included, what the pod sees at
// /host), the state dir is a directory of the machine's own filesystem
// (the hostPath /var/lib/stoker). After every boot of the machine the old
// process is killed and a new one started with the new leader's root, as
// the kubelet restarts a DaemonSet pod after its host rebooted.
type hostAgent struct {
	t    *testing.T
	m    *nspawn.Machine
	bin  string
	args []string // everything but --root and --state-dir
	log  string

	mu     sync.Mutex
	starts int
	cmd    *exec.Cmd
	done   chan struct{}
}

func startHostAgent(t *testing.T, f *demo.Fleet, m *nspawn.Machine, args ...string) *hostAgent {
	t.Helper()
	h := &hostAgent{t: t, m: m, bin: stokerBin, args: args,
		log: filepath.Join(f.Dir, "logs", "agent-"+m.Name()+".log"), done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(h.log), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go h.loop(ctx)
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

func (h *hostAgent) loop(ctx context.Context) {
	defer close(h.done)
	defer h.kill()
	for boot := 1; ctx.Err() == nil; boot++ {
		if err := h.m.WaitBoot(ctx, boot); err != nil {
			return
		}
		if err := h.start(); err != nil {
			h.t.Errorf("start agent for boot %d: %v", boot, err)
			return
		}
		// The next boot means this one ended: the pod died with its host.
		if err := h.m.WaitBoot(ctx, boot+1); err != nil {
			return
		}
		h.kill()
	}
}

func (h *hostAgent) start() error {
	leader := h.m.Leader()
	if leader == 0 {
		return fmt.Errorf("machine %s is not running", h.m.Name())
	}
	logf, err := os.OpenFile(h.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{"agent",
		"--root", fmt.Sprintf("/proc/%d/root", leader),
		"--state-dir", h.m.Path("/var/lib/stoker"),
	}, h.args...)
	cmd := exec.Command(h.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starts++
	fmt.Fprintf(logf, "=== e2e: agent start %d, --root /proc/%d/root (boot %d of %s) ===\n", h.starts, leader, h.m.Boots(), h.m.Name())
	if err := cmd.Start(); err != nil {
		return err
	}
	h.cmd = cmd
	return nil
}

func (h *hostAgent) kill() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return
	}
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	_ = h.cmd.Wait()
	h.cmd = nil
}

// Starts returns how many agent processes were started.
func (h *hostAgent) Starts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.starts
}

// count returns how many lines of the agent log contain s.
func (h *hostAgent) count(s string) int {
	data, _ := os.ReadFile(h.log)
	return strings.Count(string(data), s)
}

// waitReport polls node's report until cond holds or timeout passes.
func waitReport(t *testing.T, f *demo.Fleet, node string, timeout time.Duration, what string, cond func(*api.Report) bool) *api.Report {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *api.Report
	for time.Now().Before(deadline) {
		if r, err := f.Report(node); err == nil {
			last = r
			if cond(r) {
				return r
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s: node %s did not get there in %s; last report: %+v", what, node, timeout, last)
	return nil
}

// cordonWatch records, from a watch on the Node, whether Stoker ever
// cordoned it.
type cordonWatch struct {
	mu       sync.Mutex
	cordoned int // events seen with unschedulable and Stoker's mark
}

func watchCordon(t *testing.T, c kubernetes.Interface, node string) *cordonWatch {
	t.Helper()
	cw := &cordonWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", node).String()})
	if err != nil {
		cancel()
		t.Fatalf("watch node %s: %v", node, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if n, ok := ev.Object.(*corev1.Node); ok && n.Spec.Unschedulable && n.Annotations["stoker.dev/cordoned"] == "true" {
				cw.mu.Lock()
				cw.cordoned++
				cw.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return cw
}

func (cw *cordonWatch) seen() int {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return cw.cordoned
}

// Stand-ins for the kubelet and the disruption controller, which the test
// apiserver does not run.

func kctx(t *testing.T) context.Context { return ctxT(t, time.Minute) }

func createRunningPod(t *testing.T, c kubernetes.Interface, ns, name, node string, labels map[string]string) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app:1"}}}}
	p, err := c.CoreV1().Pods(ns).Create(kctx(t), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := c.CoreV1().Pods(ns).UpdateStatus(kctx(t), p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("mark pod %s/%s running: %v", ns, name, err)
	}
}

func createPDB(t *testing.T, c kubernetes.Interface, ns, name string, selector map[string]string) {
	t.Helper()
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: selector}}}
	if _, err := c.PolicyV1().PodDisruptionBudgets(ns).Create(kctx(t), pdb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pdb: %v", err)
	}
	setPDBStatus(t, c, ns, name, 0)
}

// setPDBStatus stands in for the disruption controller.
func setPDBStatus(t *testing.T, c kubernetes.Interface, ns, name string, allowed int32) {
	t.Helper()
	pdb, err := c.PolicyV1().PodDisruptionBudgets(ns).Get(kctx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pdb: %v", err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: allowed,
		CurrentHealthy: 1 + allowed, DesiredHealthy: 1, ExpectedPods: 1 + allowed}
	if _, err := c.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(kctx(t), pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set pdb status: %v", err)
	}
}
