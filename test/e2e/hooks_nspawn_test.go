//go:build e2e

package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/test/nspawn"
)

// hookLogScript is what each hook of TestHooksRunInsideTheHost writes, to
// a path that exists only inside the machine: the point, and what only
// the machine's own root and /proc show.
func hookLogScript(point string) string {
	return "#!/bin/sh\necho \"" + point + " $(cat /etc/hostname) $(cat /etc/machine-id) $(cat /proc/sys/kernel/random/boot_id) root=$STOKER_ROOT\" >> /var/lib/e2e/hooks.log\n"
}

const hooksHostPolicy = `apiVersion: operator.openshift.io/v1
kind: MachineConfiguration
metadata:
  name: cluster
spec:
  nodeDisruptionPolicy:
    files:
      - path: /etc/stoker/hooks.d
        actions:
          - type: None
`

// TestHooksRunInsideTheHost: with the agent outside a booted
// systemd-nspawn machine and --root at the machine's root (as the
// DaemonSet runs it), the hooks a MachineConfig shipped run chrooted into
// the machine, as grubby does: each of the four points of a Reboot update
// writes the machine's /etc/hostname, /etc/machine-id and boot id to a
// file inside the machine; after-reboot runs in the new boot.
func TestHooksRunInsideTheHost(t *testing.T) {
	nspawn.Skip(t)
	repo := map[string]string{
		"pools/worker.yaml":         pool("worker", "1", false, ""),
		"machineconfiguration.yaml": hooksHostPolicy,
	}
	for i, p := range []string{"before-drain", "before-apply", "before-reboot", "after-reboot"} {
		name := "4" + string(rune('0'+i)) + "-hook-" + p
		repo["machineconfigs/"+name+".yaml"] = hookMC(name, "worker", "/etc/stoker/hooks.d/"+p+"/50-log", hookLogScript(p))
	}
	f := newFleet(t, map[string]map[string]string{"main": repo})
	m := nspawn.Boot(t, nspawn.Options{Setup: setupHost})
	node := m.Name()
	ctx := ctxT(t, 6*time.Minute)
	show := func(args ...string) string {
		out, err := m.Run(ctx, args...)
		if err != nil {
			t.Logf("%v: %v", args, err)
		}
		return strings.TrimSpace(out)
	}
	startHostAgent(t, f, m, "--repo", f.RepoURL, "--reports-repo", f.ReportsRepoURL, "--node", node,
		"--labels", "node-role.kubernetes.io/worker=,topology.kubernetes.io/zone=a",
		"--interval", "1s", "--reboot", "systemd", "--os-backend", "auto", "--drain", "none", "--hook-timeout", "1m")
	v := waitConverged(t, f, "", 3*time.Minute)
	cfg1 := nodeOf(v, node).CurrentConfig
	if got := show("sh", "-c", "cat /var/lib/e2e/hooks.log 2>/dev/null; true"); got != "" {
		t.Fatalf("hooks ran while being shipped (they gate the next update):\n%s", got)
	}
	boot1, err := m.BootID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hostname, machineID := show("cat", "/etc/hostname"), show("cat", "/etc/machine-id")
	if own, _ := os.ReadFile("/etc/machine-id"); strings.TrimSpace(string(own)) == machineID {
		t.Fatalf("the machine shares the test host's machine id %s: the test proves nothing", machineID)
	}

	if _, err := f.Commit("main", map[string]string{"machineconfigs/60-e2e-kargs.yaml": kargsMC("60-e2e-kargs", "e2e.hooks=1")}, nil, "kernel arguments"); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitBoot(ctx, 2); err != nil {
		t.Fatalf("the agent did not reboot the machine: %v", err)
	}
	waitConverged(t, f, cfg1, 3*time.Minute)
	boot2, err := m.BootID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := show("cat", "/var/lib/e2e/hooks.log")
	want := strings.Join([]string{
		"before-drain " + hostname + " " + machineID + " " + boot1 + " root=/",
		"before-apply " + hostname + " " + machineID + " " + boot1 + " root=/",
		"before-reboot " + hostname + " " + machineID + " " + boot1 + " root=/",
		"after-reboot " + hostname + " " + machineID + " " + boot2 + " root=/",
	}, "\n")
	if got != want {
		t.Errorf("hooks log inside the machine:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat("/var/lib/e2e/hooks.log"); err == nil {
		if data, _ := os.ReadFile("/var/lib/e2e/hooks.log"); strings.Contains(string(data), machineID) {
			t.Errorf("a hook wrote to the test host's /var/lib/e2e/hooks.log: not chrooted")
		}
	}
}
