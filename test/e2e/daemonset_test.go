//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/test/kubeapi"
	"stoker.dev/stoker/test/nspawn"
)

// grubbyStandIn is installed inside the machine: the host's "grubby",
// keeping the kernel arguments of the default entry in /etc/e2e-kargs and
// logging every call with the host name it ran under.
const grubbyStandIn = `#!/bin/sh
# stoker e2e: grubby stand-in inside the machine
f=/etc/e2e-kargs
echo "$(cat /etc/hostname): grubby $*" >> /var/log/e2e-grubby.log
[ -f "$f" ] || echo "root=/dev/vda1 quiet" > "$f"
case "$1" in
--info=DEFAULT) echo "index=0"; echo "args=\"$(cat "$f")\""; exit 0 ;;
--update-kernel=ALL) shift ;;
*) echo "unsupported: $*" >&2; exit 1 ;;
esac
args=" $(cat "$f") "
for a in "$@"; do
	case "$a" in
	--args=*) for k in ${a#--args=}; do args="$args$k "; done ;;
	--remove-args=*) for k in ${a#--remove-args=}; do args=$(echo "$args" | sed "s| $k | |g"); done ;;
	esac
done
echo $args > "$f"
`

// Host services the config's files belong to, there before Stoker: one
// logs its file at every start, the other at every reload.
const restartService = `[Unit]
Description=e2e service restarted when its file changes
[Service]
ExecStart=/bin/sh -c 'cat /etc/e2e-restart/app.conf >> /var/lib/e2e/restarts 2>/dev/null; exec sleep infinity'
[Install]
WantedBy=multi-user.target
`

const reloadService = `[Unit]
Description=e2e service reloaded when its file changes
[Service]
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'cat /etc/e2e-reload/app.conf >> /var/lib/e2e/reloads'
[Install]
WantedBy=multi-user.target
`

const hostPolicy = `apiVersion: operator.openshift.io/v1
kind: MachineConfiguration
metadata:
  name: cluster
spec:
  nodeDisruptionPolicy:
    files:
      - path: /etc/e2e-restart/app.conf
        actions:
          - type: Restart
            restart:
              serviceName: e2e-restart.service
      - path: /etc/e2e-reload/app.conf
        actions:
          - type: Reload
            reload:
              serviceName: e2e-reload.service
    units:
      - name: e2e-app.service
        actions:
          - type: DaemonReload
          - type: Restart
            restart:
              serviceName: e2e-app.service
`

const appUnitMC = `apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfig
metadata:
  name: 50-e2e-app
  labels:
    machineconfiguration.openshift.io/role: worker
spec:
  config:
    ignition:
      version: 3.4.0
    systemd:
      units:
        - name: e2e-app.service
          enabled: true
          contents: |
            [Unit]
            Description=stoker e2e unit from the config
            [Service]
            ExecStart=/bin/sleep infinity
            [Install]
            WantedBy=multi-user.target
`

func kargsMC(name string, args ...string) string {
	return fmt.Sprintf(`apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfig
metadata:
  name: %s
  labels:
    machineconfiguration.openshift.io/role: worker
spec:
  kernelArguments: [%s]
`, name, strings.Join(args, ", "))
}

// setupHost installs the host's own pieces before the first boot: grubby,
// the two services (enabled), and their log directory.
func setupHost(root string) error {
	files := map[string]string{
		"usr/local/sbin/grubby":                  grubbyStandIn,
		"etc/systemd/system/e2e-restart.service": restartService,
		"etc/systemd/system/e2e-reload.service":  reloadService,
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o755); err != nil {
			return err
		}
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	for _, u := range []string{"e2e-restart.service", "e2e-reload.service"} {
		if err := os.Symlink("/etc/systemd/system/"+u, filepath.Join(wants, u)); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(root, "var/lib/e2e"), 0o755)
}

// TestDaemonSetAgentOnBootedHost (issue 13) runs the agent as the chart's
// DaemonSet runs it — outside the host, --root at the host's root, the
// host's bus, --drain kube against a real kube-apiserver — on a
// systemd-nspawn machine booted with systemd, restarted after each of the
// machine's boots as the kubelet restarts the pod.
//
//  1. The config brings a unit, a file under a Restart policy and a file
//     under a Reload policy: the unit is enabled and running, the restarted
//     service has a new main PID, the reloaded one ran its ExecReload, no
//     drain, no reboot.
//  2. Kernel arguments added: the Node is cordoned, grubby runs inside the
//     machine, logind reboots it (new boot id), the new agent validates,
//     uncordons, Done.
//  3. A PodDisruptionBudget blocks the next drain: Working naming the PDB,
//     no reboot across several retries; relaxed, the update completes.
func TestDaemonSetAgentOnBootedHost(t *testing.T) {
	nspawn.Skip(t)
	kube := kubeapi.Start(t)
	start := time.Now()
	c := kube.Client(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kube.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	repo := map[string]string{
		"pools/worker.yaml":                  pool("worker", "1", false, ""),
		"machineconfiguration.yaml":          hostPolicy,
		"machineconfigs/50-e2e-app.yaml":     appUnitMC,
		"machineconfigs/51-e2e-restart.yaml": fileMC("51-e2e-restart", "worker", "/etc/e2e-restart/app.conf", "restart-v1"),
		"machineconfigs/52-e2e-reload.yaml":  fileMC("52-e2e-reload", "worker", "/etc/e2e-reload/app.conf", "reload-v1"),
	}
	f := newFleet(t, map[string]map[string]string{"main": repo})
	m := nspawn.Boot(t, nspawn.Options{Setup: setupHost})
	node := m.Name()
	ctx := ctxT(t, 8*time.Minute)
	if _, err := c.CoreV1().Nodes().Create(kctx(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cordons := watchCordon(t, c, node)
	show := func(args ...string) string {
		out, err := m.Run(ctx, args...)
		if err != nil {
			t.Logf("%v: %v", args, err)
		}
		return strings.TrimSpace(out)
	}
	mainPID := func(unit string) string { return show("systemctl", "show", "-p", "MainPID", "--value", unit) }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("grubby log:\n%s\nconsole:\n%s", show("cat", "/var/log/e2e-grubby.log"), m.ConsoleTail(30))
			t.Logf("agent plans:\n%s", agentLines(f, node, "planned update", "e2e: agent start", "level=warn", "level=error"))
		}
	})
	pid0 := mainPID("e2e-restart.service")
	boot1, err := m.BootID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	agent := startHostAgent(t, f, m, "--repo", f.RepoURL, "--reports-repo", f.ReportsRepoURL, "--node", node,
		"--labels", "node-role.kubernetes.io/worker=,topology.kubernetes.io/zone=a",
		"--interval", "1s", "--reboot", "systemd", "--os-backend", "auto",
		"--drain", "kube", "--kubeconfig", kubeconfig, "--drain-backoff", "500ms")

	// 1. Unit, Restart file, Reload file: live actions on the host's systemd.
	v := waitConverged(t, f, "", 3*time.Minute)
	cfg1 := nodeOf(v, node).CurrentConfig
	t.Logf("step 1 (unit, Restart, Reload) done after %s", time.Since(start).Round(time.Millisecond))
	if got := show("systemctl", "is-enabled", "e2e-app.service"); got != "enabled" {
		t.Errorf("e2e-app.service is %q, want enabled", got)
	}
	if got := show("systemctl", "is-active", "e2e-app.service"); got != "active" {
		t.Errorf("e2e-app.service is %q, want active", got)
	}
	if pid1 := mainPID("e2e-restart.service"); pid1 == pid0 || pid1 == "0" {
		t.Errorf("e2e-restart.service main PID %s → %s: want a new one (restarted)", pid0, pid1)
	}
	if got := show("tail", "-n1", "/var/lib/e2e/restarts"); got != "restart-v1" {
		t.Errorf("e2e-restart.service last started with %q, want restart-v1", got)
	}
	if got := show("cat", "/var/lib/e2e/reloads"); got != "reload-v1" {
		t.Errorf("e2e-reload.service ExecReload saw %q, want reload-v1 (one reload)", got)
	}
	if m.Boots() != 1 || cordons.seen() != 0 {
		t.Errorf("live update: boots %d, cordon events %d; want no reboot, no drain", m.Boots(), cordons.seen())
	}

	// 2. Kernel arguments: drain, grubby inside, reboot through logind.
	if _, err := f.Commit("main", map[string]string{"machineconfigs/60-e2e-kargs.yaml": kargsMC("60-e2e-kargs", "e2e.kargs=1")}, nil, "kernel arguments"); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitBoot(ctx, 2); err != nil {
		t.Fatalf("the agent did not reboot the machine: %v", err)
	}
	v = waitConverged(t, f, cfg1, 3*time.Minute)
	cfg2 := nodeOf(v, node).CurrentConfig
	t.Logf("step 2 (kernel arguments, reboot) done after %s", time.Since(start).Round(time.Millisecond))
	r := waitReport(t, f, node, time.Minute, "step 2", func(r *api.Report) bool { return r.State == api.StateDone && r.CurrentConfig == cfg2 })
	boot2, err := m.BootID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if boot2 == boot1 || r.BootID != boot2 {
		t.Errorf("boot ids: before %s, after %s, reported %s; want a new boot, reported", boot1, boot2, r.BootID)
	}
	if got := show("cat", "/etc/e2e-kargs"); !strings.Contains(" "+got+" ", " e2e.kargs=1 ") {
		t.Errorf("kernel arguments in the machine: %q, want e2e.kargs=1", got)
	}
	if got := show("cat", "/var/log/e2e-grubby.log"); !strings.Contains(got, node+": grubby --update-kernel=ALL --args=e2e.kargs=1") {
		t.Errorf("grubby inside the machine was not asked to add the argument:\n%s", got)
	}
	if cordons.seen() == 0 {
		t.Errorf("the Node was never cordoned by Stoker during the reboot update")
	}
	assertUncordoned(t, c, node)
	if got := show("systemctl", "is-active", "e2e-app.service"); got != "active" {
		t.Errorf("e2e-app.service after reboot: %q", got)
	}

	// 3. A PDB blocks the drain: Working, no reboot; relaxed, it completes.
	if _, err := c.CoreV1().Namespaces().Create(kctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createRunningPod(t, c, "apps", "web-0", node, map[string]string{"app": "web"})
	createPDB(t, c, "apps", "web", map[string]string{"app": "web"})
	blocked0 := agent.count("drain blocked")
	if _, err := f.Commit("main", map[string]string{"machineconfigs/61-e2e-pdb.yaml": kargsMC("61-e2e-pdb", "e2e.pdb=1")}, nil, "kernel arguments behind a PDB"); err != nil {
		t.Fatal(err)
	}
	r = waitReport(t, f, node, 2*time.Minute, "blocked drain", func(r *api.Report) bool {
		return r.State == api.StateWorking && strings.Contains(r.Reason, "PodDisruptionBudget apps/web")
	})
	deadline := time.Now().Add(2 * time.Minute)
	for agent.count("drain blocked") < blocked0+3 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if n := agent.count("drain blocked") - blocked0; n < 3 {
		t.Fatalf("blocked drain retried %d times in 2 minutes, want at least 3", n)
	}
	if m.Boots() != 2 || strings.Contains(show("cat", "/etc/e2e-kargs"), "e2e.pdb=1") {
		t.Fatalf("blocked drain: boots %d, kargs %q; want no reboot and nothing written", m.Boots(), show("cat", "/etc/e2e-kargs"))
	}
	t.Logf("step 3: drain blocked %d times, reported %q", agent.count("drain blocked")-blocked0, r.Reason)
	kubeapi.FakeKubelet(t, c, "apps")
	setPDBStatus(t, c, "apps", "web", 1)
	if err := m.WaitBoot(ctx, 3); err != nil {
		t.Fatalf("no reboot after the PDB allowed the eviction: %v", err)
	}
	v = waitConverged(t, f, cfg2, 3*time.Minute)
	cfg3 := nodeOf(v, node).CurrentConfig
	waitReport(t, f, node, time.Minute, "step 3", func(r *api.Report) bool { return r.State == api.StateDone && r.CurrentConfig == cfg3 })
	if _, err := c.CoreV1().Pods("apps").Get(kctx(t), "web-0", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("web-0 after the drain: %v, want evicted", err)
	}
	assertUncordoned(t, c, node)
	if got := show("cat", "/etc/e2e-kargs"); !strings.Contains(got, "e2e.pdb=1") {
		t.Errorf("kernel arguments after the PDB relaxed: %q", got)
	}
	if agent.Starts() != 3 {
		t.Errorf("agent started %d times, want 3 (one per boot)", agent.Starts())
	}
	t.Logf("scenario took %s (3 boots, %d agent starts)", time.Since(start).Round(time.Millisecond), agent.Starts())
}

// agentLines returns the agent log's lines holding any of subs.
func agentLines(f *demo.Fleet, node string, subs ...string) string {
	data, _ := os.ReadFile(filepath.Join(f.Dir, "logs", "agent-"+node+".log"))
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// assertUncordoned checks node is schedulable and carries no Stoker mark.
func assertUncordoned(t *testing.T, c kubernetes.Interface, node string) {
	t.Helper()
	n, err := c.CoreV1().Nodes().Get(kctx(t), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Spec.Unschedulable || n.Annotations["stoker.dev/cordoned"] != "" {
		t.Errorf("node %s after the update: unschedulable %v, annotations %v; want uncordoned", node, n.Spec.Unschedulable, n.Annotations)
	}
}
