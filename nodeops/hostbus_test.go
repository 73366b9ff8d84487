package nodeops

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostSystemdRefusesWithoutSockets: a live root whose systemd cannot
// be reached is an error naming every socket tried, never a silent
// fallback to the offline `systemctl --root`.
func TestHostSystemdRefusesWithoutSockets(t *testing.T) {
	root := t.TempDir()
	_, err := NewSystemd(context.Background(), Host{Root: root})
	if err == nil {
		t.Fatal("NewSystemd of a root without a running systemd succeeded")
	}
	for _, want := range []string{filepath.Join(root, SystemdPrivateSocket), filepath.Join(root, SystemBusSocket)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	sd, err := NewSystemd(context.Background(), Host{Root: root, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sd.(*RootSystemd); !ok {
		t.Errorf("offline host: %T, want *RootSystemd", sd)
	}
}

// TestToolsChrootLookup: on a live host under a root the tools are the
// host's own, found on HostPATH inside the root (not on the agent's PATH).
func TestToolsChrootLookup(t *testing.T) {
	root := t.TempDir()
	t.Setenv("PATH", t.TempDir()) // nothing on the agent's own PATH
	tools := toolsFor(Host{Root: root})
	if tools.Has(GrubbyBin) {
		t.Fatal("grubby found in an empty root")
	}
	must(t, os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "usr/sbin/grubby"), []byte("#!/bin/sh\n"), 0o755))
	if got, err := tools.look(GrubbyBin); err != nil || got != "/usr/sbin/grubby" {
		t.Fatalf("look grubby = %q, %v; want /usr/sbin/grubby inside the root", got, err)
	}
	if got := detect(root, tools); got != BackendGrubby {
		t.Errorf("detect = %s, want grubby", got)
	}
	cmd, err := tools.Command(context.Background(), GrubbyBin, "--info=DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	if cmd.SysProcAttr == nil || cmd.SysProcAttr.Chroot != root || cmd.Path != "/usr/sbin/grubby" {
		t.Errorf("command = %s chroot %+v, want /usr/sbin/grubby chrooted into %s", cmd.Path, cmd.SysProcAttr, root)
	}
	if toolsFor(Host{Root: root, Offline: true}).Chroot != "" || toolsFor(Host{Root: "/"}).Chroot != "" {
		t.Errorf("offline hosts and / must use the agent's PATH")
	}
}
