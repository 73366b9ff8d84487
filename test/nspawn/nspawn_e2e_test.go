//go:build e2e

package nspawn_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/test/nspawn"
)

// helloUnit records every boot it starts in into the shared directory, then
// stays running, like a node daemon would.
const helloUnit = `[Unit]
Description=stoker nspawn harness test unit

[Service]
ExecStartPre=/bin/sh -c 'cat /proc/sys/kernel/random/boot_id >> /shared/boots'
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
`

// TestRebootKeepsEnabledUnit installs and enables a unit in a running
// machine, reboots it from inside, and checks the machine came back as a new
// boot with the unit running again.
func TestRebootKeepsEnabledUnit(t *testing.T) {
	shared := t.TempDir()
	m := nspawn.Boot(t, nspawn.Options{
		Binds: []nspawn.Bind{{Source: shared, Target: "/shared"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	if err := m.WriteFile("/etc/systemd/system/stoker-hello.service", []byte(helloUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(ctx, t, m, "systemctl", "daemon-reload")
	mustRun(ctx, t, m, "systemctl", "enable", "--now", "stoker-hello.service")
	if got := state(ctx, t, m, "is-active"); got != "active" {
		t.Fatalf("after enable --now: stoker-hello.service is %q, want active\n%s", got, m.Journal(ctx, "stoker-hello.service"))
	}
	boot1, err := m.BootID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	// systemctl may lose its connection as the manager goes down.
	if out, err := m.Run(ctx, "systemctl", "reboot"); err != nil {
		t.Logf("systemctl reboot: %v (%s)", err, out)
	}
	if err := m.WaitBoot(ctx, 2); err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, m.ConsoleTail(60))
	}
	t.Logf("reboot round trip: %s", time.Since(start).Round(time.Millisecond))

	boot2, err := m.BootID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if boot2 == boot1 || boot2 == "" {
		t.Errorf("boot id after reboot = %q, before = %q: want a new one", boot2, boot1)
	}
	if got := state(ctx, t, m, "is-enabled"); got != "enabled" {
		t.Errorf("after reboot: stoker-hello.service enablement is %q, want enabled", got)
	}
	if got := state(ctx, t, m, "is-active"); got != "active" {
		t.Errorf("after reboot: stoker-hello.service is %q, want active", got)
	}
	data, err := os.ReadFile(filepath.Join(shared, "boots"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Fields(string(data)), []string{boot1, boot2}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("boots the unit saw (via the shared bind mount) = %q, want %q", got, want)
	}
	if got := m.Boots(); got != 2 {
		t.Errorf("Boots() = %d, want 2", got)
	}

	// The agent's --reboot systemd asks logind over the system bus; that
	// must work in the machine too (dbus activation of logind included).
	if out, err := m.Run(ctx, "busctl", "call", "org.freedesktop.login1", "/org/freedesktop/login1",
		"org.freedesktop.login1.Manager", "Reboot", "b", "false"); err != nil {
		t.Logf("logind Reboot: %v (%s)", err, out)
	}
	if err := m.WaitBoot(ctx, 3); err != nil {
		t.Fatalf("reboot through logind: %v\nconsole:\n%s", err, m.ConsoleTail(60))
	}
	boot3, err := m.BootID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if boot3 == boot2 || boot3 == boot1 {
		t.Errorf("boot id after logind reboot = %q, earlier %q and %q: want a new one", boot3, boot1, boot2)
	}
	if got := state(ctx, t, m, "is-active"); got != "active" {
		t.Errorf("after logind reboot: stoker-hello.service is %q, want active", got)
	}
}

// TestPoweroffEndsMachine checks that a poweroff inside ends the machine
// instead of booting it again.
func TestPoweroffEndsMachine(t *testing.T) {
	m := nspawn.Boot(t, nspawn.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := m.Run(ctx, "systemctl", "poweroff"); err != nil {
		t.Logf("systemctl poweroff: %v (%s)", err, out)
	}
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatalf("machine still running a minute after poweroff\nconsole:\n%s", m.ConsoleTail(40))
	}
	if err := m.Err(); err != nil {
		t.Errorf("Err() after poweroff = %v, want nil", err)
	}
	if got := m.Boots(); got != 1 {
		t.Errorf("Boots() after poweroff = %d, want 1", got)
	}
	if _, err := m.Run(ctx, "true"); err == nil {
		t.Error("Run after poweroff succeeded, want ErrNotRunning")
	}
	if err := m.WaitBoot(ctx, 2); err == nil {
		t.Error("WaitBoot(2) after poweroff succeeded, want an error")
	}
}

// TestHostNetworkAndReadOnlyBind checks what agents rely on: a server on the
// host's loopback is reachable from inside, and a read-only bind (the
// binary directory) cannot be written from inside.
func TestHostNetworkAndReadOnlyBind(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "hello"), []byte("#!/bin/sh\necho hello from $(hostname)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			_, _ = c.Write([]byte("echo " + line))
			_ = c.Close()
		}
	}()

	m := nspawn.Boot(t, nspawn.Options{
		Binds: []nspawn.Bind{{Source: bin, Target: "/opt/stoker/bin", ReadOnly: true}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	out := mustRun(ctx, t, m, "/opt/stoker/bin/hello")
	if want := "hello from " + m.Name(); strings.TrimSpace(out) != want {
		t.Errorf("hello = %q, want %q", strings.TrimSpace(out), want)
	}
	if out, err := m.Run(ctx, "touch", "/opt/stoker/bin/new"); err == nil {
		t.Errorf("writing into the read-only bind succeeded: %s", out)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	out = mustRun(ctx, t, m, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/$0; echo ping >&3; cat <&3", strconv.Itoa(port))
	if strings.TrimSpace(out) != "echo ping" {
		t.Errorf("loopback echo from inside = %q, want %q", out, "echo ping")
	}
}

// BenchmarkBoot measures copying the root filesystem and booting it until
// systemd reports running.
func BenchmarkBoot(b *testing.B) {
	for b.Loop() {
		m := nspawn.Boot(b, nspawn.Options{})
		b.StopTimer()
		if err := m.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkReboot measures a reboot from inside until systemd is running
// again.
func BenchmarkReboot(b *testing.B) {
	m := nspawn.Boot(b, nspawn.Options{})
	ctx := context.Background()
	n := 1
	for b.Loop() {
		_, _ = m.Run(ctx, "systemctl", "reboot")
		n++
		if err := m.WaitBoot(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
}

func mustRun(ctx context.Context, t *testing.T, m *nspawn.Machine, args ...string) string {
	t.Helper()
	out, err := m.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// state returns `systemctl <verb> stoker-hello.service`, which exits non-zero
// for every answer but the happy one.
func state(ctx context.Context, t *testing.T, m *nspawn.Machine, verb string) string {
	t.Helper()
	out, _ := m.Run(ctx, "systemctl", verb, "stoker-hello.service")
	return strings.TrimSpace(out)
}
