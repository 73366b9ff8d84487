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
	env := "STOKER_REPO=" + f.RepoURL + "\nSTOKER_REPORTS_REPO=" + f.ReportsRepoURL + "\nSTOKER_ARGS=--interval 1s --listen 127.0.0.1:0\n"
	m, ctx := startShippedUnit(t, "hub-unit", "stoker-hub", "hub.env", env)
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
	const node = "agent-unit"
	env := "STOKER_REPO=" + f.RepoURL + "\nSTOKER_REPORTS_REPO=" + f.ReportsRepoURL + "\nSTOKER_ARGS=--interval 1s --os-backend none --labels node-role.kubernetes.io/worker=\n"
	startShippedUnit(t, node, "stoker-agent", "agent.env", env)
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

// startShippedUnit boots a machine named name, installs
// deploy/systemd/<unit>.service as shipped (only the binary's path changed)
// with env as /etc/stoker/<envFile>, and starts it. `systemctl start`
// returns only after READY=1 (Type=notify); the unit must then be active.
// The unit's journal is logged when the test fails. The context bounds the
// rest of the test.
func startShippedUnit(t *testing.T, name, unit, envFile, env string) (*nspawn.Machine, context.Context) {
	t.Helper()
	data, err := os.ReadFile("../../deploy/systemd/" + unit + ".service")
	if err != nil {
		t.Fatal(err)
	}
	shipped := strings.ReplaceAll(string(data), "/usr/local/bin/stoker", "/opt/stoker/bin/"+filepath.Base(stokerBin))
	m := nspawn.Boot(t, nspawn.Options{
		Name:  name,
		Binds: []nspawn.Bind{{Source: filepath.Dir(stokerBin), Target: "/opt/stoker/bin", ReadOnly: true}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		if t.Failed() {
			c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t.Logf("%s journal:\n%s", unit, m.Journal(c, unit+".service"))
		}
	})
	for path, data := range map[string]string{"/etc/systemd/system/" + unit + ".service": shipped, "/etc/stoker/" + envFile: env} {
		if err := m.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "start", unit + ".service"}} {
		if out, err := m.Run(ctx, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if out, _ := m.Run(ctx, "systemctl", "show", "-p", "ActiveState,Type", unit+".service"); !strings.Contains(out, "ActiveState=active") ||
		!strings.Contains(out, "Type=notify") {
		t.Fatalf("%s unit: %s", unit, out)
	}
	return m, ctx
}
