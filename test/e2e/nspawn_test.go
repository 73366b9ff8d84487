//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/test/nspawn"
)

const helloUnitMC = `apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfig
metadata:
  name: 60-e2e-hello
  labels:
    machineconfiguration.openshift.io/role: worker
spec:
  config:
    ignition:
      version: 3.4.0
    systemd:
      units:
        - name: e2e-hello.service
          enabled: true
          contents: |
            [Unit]
            Description=stoker e2e unit
            [Service]
            ExecStart=/bin/sleep infinity
            [Install]
            WantedBy=multi-user.target
`

// The unit is restarted on change, so it starts without a reboot; files
// outside /etc/e2e fall to the default action, Reboot.
const helloPolicy = `apiVersion: operator.openshift.io/v1
kind: MachineConfiguration
metadata:
  name: cluster
spec:
  nodeDisruptionPolicy:
    files:
      - path: /etc/e2e
        actions:
          - type: None
    units:
      - name: e2e-hello.service
        actions:
          - type: DaemonReload
          - type: Restart
            restart:
              serviceName: e2e-hello.service
`

// TestRealSystemdNode (9): an agent running as a systemd unit inside a
// systemd-nspawn container, with the real D-Bus systemd and --reboot
// systemd: a MachineConfig's unit ends up enabled and running; a
// reboot-requiring change reboots the container and the agent reports Done
// after the boot.
func TestRealSystemdNode(t *testing.T) {
	nspawn.Skip(t)
	t.Parallel()
	repo := simpleRepo("1", false, "v1")
	repo["machineconfiguration.yaml"] = helloPolicy
	repo["machineconfigs/60-e2e-hello.yaml"] = helloUnitMC
	f := newFleet(t, map[string]map[string]string{"main": repo})

	const node = "nspawn-0"
	agentUnit := fmt.Sprintf(`[Unit]
Description=stoker agent
After=network-online.target dbus.service

[Service]
ExecStart=/opt/stoker/bin/%s agent --repo %s --reports-repo %s --node %s --root / --state-dir /var/lib/stoker --reboot systemd --os-backend none --drain none --interval 1s --labels node-role.kubernetes.io/worker=,topology.kubernetes.io/zone=a
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`, filepath.Base(stokerBin), f.RepoURL, f.ReportsRepoURL, node)
	m := nspawn.Boot(t, nspawn.Options{
		Name:  node,
		Binds: []nspawn.Bind{{Source: filepath.Dir(stokerBin), Target: "/opt/stoker/bin", ReadOnly: true}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t.Logf("agent journal:\n%s", m.Journal(c, "stoker-agent.service"))
		}
	})
	if err := m.WriteFile("/etc/systemd/system/stoker-agent.service", []byte(agentUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "--now", "stoker-agent.service"}} {
		if out, err := m.Run(ctx, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}

	v := waitConverged(t, f, "", 3*time.Minute)
	old := nodeOf(v, node).CurrentConfig
	for verb, want := range map[string]string{"is-enabled": "enabled", "is-active": "active"} {
		out, _ := m.Run(ctx, "systemctl", verb, "e2e-hello.service")
		if strings.TrimSpace(out) != want {
			t.Errorf("e2e-hello.service %s = %q, want %q", verb, strings.TrimSpace(out), want)
		}
	}
	boots := m.Boots()
	r1, err := f.Report(node)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.Commit("main", map[string]string{
		"machineconfigs/70-reboot.yaml": fileMC("70-reboot", "worker", "/etc/e2e-reboot.conf", "needs a reboot"),
	}, nil, "a file outside the policy: Reboot"); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitBoot(ctx, boots+1); err != nil {
		t.Fatalf("the agent did not reboot the container: %v\n%s", err, m.ConsoleTail(40))
	}
	v = waitConverged(t, f, old, 3*time.Minute)
	r2, err := f.Report(node)
	if err != nil {
		t.Fatal(err)
	}
	if r2.State != api.StateDone || r2.CurrentConfig == old || r2.BootID == r1.BootID {
		t.Errorf("after reboot: state %s current %s (was %s) boot %s (was %s)", r2.State, r2.CurrentConfig, old, r2.BootID, r1.BootID)
	}
	data, err := m.Run(ctx, "cat", "/etc/e2e-reboot.conf")
	if err != nil || data != "needs a reboot" {
		t.Errorf("/etc/e2e-reboot.conf = %q, %v", data, err)
	}
	if out, _ := m.Run(ctx, "systemctl", "is-active", "e2e-hello.service"); strings.TrimSpace(out) != "active" {
		t.Errorf("e2e-hello.service after reboot: %q", out)
	}
}
