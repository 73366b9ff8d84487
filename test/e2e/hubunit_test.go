//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/test/gitserver"
	"stoker.dev/stoker/test/nspawn"
)

// TestShippedHubUnit runs deploy/systemd/stoker-hub.service as shipped
// (only the binary's path changed) under real systemd in systemd-nspawn:
// `systemctl start` returns only after the hub's READY=1 (Type=notify),
// the hub runs as a dynamic user, not root, and it writes stoker/fleet
// under all the unit's sandboxing; the watchdog keeps it running.
func TestShippedHubUnit(t *testing.T) {
	nspawn.Skip(t)
	t.Parallel()
	f := newFleetNoHub(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	unit, err := os.ReadFile("../../deploy/systemd/stoker-hub.service")
	if err != nil {
		t.Fatal(err)
	}
	shipped := strings.ReplaceAll(string(unit), "/usr/local/bin/stoker", "/opt/stoker/bin/"+filepath.Base(stokerBin))
	m := nspawn.Boot(t, nspawn.Options{
		Name:  "hub-unit",
		Binds: []nspawn.Bind{{Source: filepath.Dir(stokerBin), Target: "/opt/stoker/bin", ReadOnly: true}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t.Logf("hub journal:\n%s", m.Journal(c, "stoker-hub.service"))
		}
	})
	env := "STOKER_REPO=" + f.RepoURL + "\nSTOKER_ARGS=--interval 1s --listen 127.0.0.1:0\n"
	for path, data := range map[string]string{"/etc/systemd/system/stoker-hub.service": shipped, "/etc/stoker/hub.env": env} {
		if err := m.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "start", "stoker-hub.service"}} {
		if out, err := m.Run(ctx, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	// Type=notify: start returned, so READY=1 arrived; the unit is active.
	if out, _ := m.Run(ctx, "systemctl", "show", "-p", "ActiveState,Type,WatchdogUSec", "stoker-hub.service"); !strings.Contains(out, "ActiveState=active") ||
		!strings.Contains(out, "Type=notify") {
		t.Fatalf("hub unit: %s", out)
	}
	pid, err := m.Run(ctx, "systemctl", "show", "-p", "MainPID", "--value", "stoker-hub.service")
	if err != nil {
		t.Fatal(err)
	}
	uid, err := m.Run(ctx, "stat", "-c", "%u", "/proc/"+strings.TrimSpace(pid))
	if err != nil || strings.TrimSpace(uid) == "0" || strings.TrimSpace(uid) == "" {
		t.Fatalf("hub process uid %q (%v): must not be root", uid, err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if out, err := gitserver.Git(f.RepoPath(), nil, "show", api.FleetBranch+":"+api.HubFile); err == nil && strings.Contains(out, "version:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sandboxed hub never wrote stoker/fleet")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, _ := m.Run(ctx, "systemctl", "is-active", "stoker-hub.service"); strings.TrimSpace(out) != "active" {
		t.Fatalf("hub after its first reconcile: %s", out)
	}
}

// TestShippedAgentUnit runs deploy/systemd/stoker-agent.service as shipped
// (only the binary's path changed) under real systemd: `systemctl start`
// returns after READY=1, and the hardened agent reports to its branch.
func TestShippedAgentUnit(t *testing.T) {
	nspawn.Skip(t)
	t.Parallel()
	f := newFleet(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	unit, err := os.ReadFile("../../deploy/systemd/stoker-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	shipped := strings.ReplaceAll(string(unit), "/usr/local/bin/stoker", "/opt/stoker/bin/"+filepath.Base(stokerBin))
	const node = "agent-unit"
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
	env := "STOKER_REPO=" + f.RepoURL + "\nSTOKER_ARGS=--interval 1s --os-backend none --labels node-role.kubernetes.io/worker=\n"
	for path, data := range map[string]string{"/etc/systemd/system/stoker-agent.service": shipped, "/etc/stoker/agent.env": env} {
		if err := m.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "start", "stoker-agent.service"}} {
		if out, err := m.Run(ctx, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if out, _ := m.Run(ctx, "systemctl", "show", "-p", "ActiveState,Type", "stoker-agent.service"); !strings.Contains(out, "ActiveState=active") ||
		!strings.Contains(out, "Type=notify") {
		t.Fatalf("agent unit: %s", out)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if r, err := f.Report(node); err == nil && r.Node == node {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hardened agent never reported")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
