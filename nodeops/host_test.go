package nodeops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

func TestSimulateRebootAndBootID(t *testing.T) {
	state := t.TempDir()
	before, err := BootID("/", state)
	must(t, err)
	var argv0 string
	var argv []string
	r, err := NewRebooter("simulate", state)
	must(t, err)
	r.(*SimulateRebooter).Exec = func(a0 string, a []string, _ []string) error {
		argv0, argv = a0, a
		return nil
	}
	must(t, r.Reboot(context.Background(), "test"))
	after, err := BootID("/", state)
	must(t, err)
	if after == before || len(after) != 36 {
		t.Errorf("boot id %q → %q, want a new uuid", before, after)
	}
	if argv0 != "/proc/self/exe" || !reflect.DeepEqual(argv, os.Args) {
		t.Errorf("re-exec %q %q", argv0, argv)
	}
	// A failing exec is an error, not a silent success.
	r.(*SimulateRebooter).Exec = func(string, []string, []string) error { return errors.New("no exec") }
	if err := r.Reboot(context.Background(), "test"); err == nil {
		t.Error("Reboot with failing exec succeeded")
	}
}

func TestExecRebooterAndDrainer(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "out")
	r, err := NewRebooter("exec:echo \"$REBOOT_REASON\" > "+out, "")
	must(t, err)
	must(t, r.Reboot(ctx, "new config"))
	if b, _ := os.ReadFile(out); string(b) != "new config\n" {
		t.Errorf("reboot hook saw %q", b)
	}
	d, err := NewDrainer("exec:echo \"$STOKER_DRAIN $NODE\" >> " + out)
	must(t, err)
	cordoned, err := d.Drain(ctx, "node-a")
	must(t, err)
	must(t, d.Uncordon(ctx, "node-a"))
	if b, _ := os.ReadFile(out); string(b) != "new config\ndrain node-a\nuncordon node-a\n" || !cordoned {
		t.Errorf("drain hook log %q, cordoned %v", b, cordoned)
	}
	failing, err := NewDrainer("exec:exit 3")
	must(t, err)
	if _, err := failing.Drain(ctx, "node-a"); err == nil || !strings.Contains(err.Error(), "node-a") {
		t.Errorf("failing drain: %v", err)
	}
	for _, bad := range []string{"kube", "exec:", "bogus"} {
		if _, err := NewDrainer(bad); err == nil {
			t.Errorf("NewDrainer(%q) succeeded", bad)
		}
	}
	for _, bad := range []string{"exec: ", "bogus", ""} {
		if _, err := NewRebooter(bad, ""); err == nil {
			t.Errorf("NewRebooter(%q) succeeded", bad)
		}
	}
	if c, err := (NoneDrainer{}).Drain(ctx, "n"); c || err != nil {
		t.Errorf("none drainer: %v %v", c, err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "a/b/c.conf")
	must(t, WriteFile(target, []byte("one"), FileOptions{Mode: 0o640, UID: 12, GID: 34}))
	must(t, WriteFile(target, []byte("two"), FileOptions{Mode: 0o600, UID: -1, GID: -1}))
	st, _, err := statFile(target)
	must(t, err)
	if data, _ := os.ReadFile(target); string(data) != "two" || st.Mode != 0o600 || st.UID != 0 || st.GID != 0 || st.Digest != Digest(data) {
		t.Errorf("got %q %+v", data, st)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "a/b")); fi.Mode().Perm() != 0o755 {
		t.Errorf("parent mode %v", fi.Mode())
	}
	// Refused targets leave no temporary file behind.
	must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "a/b/link")))
	must(t, os.Mkdir(filepath.Join(dir, "a/b/dir"), 0o755))
	for _, bad := range []string{"link", "dir"} {
		err := WriteFile(filepath.Join(dir, "a/b", bad), []byte("x"), FileOptions{UID: -1, GID: -1})
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "a/b"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"c.conf", "dir", "link"}) {
		t.Errorf("directory holds %q", names)
	}
}

func TestRootSystemdEnablement(t *testing.T) {
	ctx := context.Background()
	root := newRoot(t)
	// A vendor unit: /etc/systemd/system/x.service must stay free for the mask.
	must(t, os.MkdirAll(filepath.Join(root, "usr/lib/systemd/system"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "usr/lib/systemd/system/x.service"), []byte(svc), 0o644))
	sd := &RootSystemd{Root: root}
	steps := []struct {
		op   func() error
		want string
	}{
		{func() error { return sd.Enable(ctx, "x.service") }, "enabled"},
		{func() error { return sd.Disable(ctx, "x.service") }, "disabled"},
		{func() error { return sd.Mask(ctx, "x.service") }, "masked"},
		{func() error { return sd.Unmask(ctx, "x.service") }, "disabled"},
	}
	for i, s := range steps {
		must(t, s.op())
		got, err := sd.UnitFileState(ctx, "x.service")
		must(t, err)
		if got != s.want {
			t.Errorf("step %d: state %s, want %s", i, got, s.want)
		}
	}
	if got, _ := sd.UnitFileState(ctx, "nope.service"); got != "not-found" {
		t.Errorf("missing unit state %q", got)
	}
}

// TestSystemctlUnitArguments: every unit reaches systemctl after "--",
// and a name systemd would not accept (here one starting with "-",
// which systemctl would read as an option) never reaches it: Apply
// refuses it naming the unit, the Systemd implementation refuses it too.
func TestSystemctlUnitArguments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "systemctl.log")
	script := "#!/bin/sh\necho \"$*\" >> " + logFile + "\necho disabled\n"
	must(t, os.WriteFile(filepath.Join(dir, SystemctlBin), []byte(script), 0o755))
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	root := newRoot(t)
	sd := &RootSystemd{Root: root}

	must(t, sd.Enable(ctx, "a.service", "b@x.timer"))
	if _, err := sd.UnitFileState(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"-H.service", "--now", "a b.service"} {
		if err := sd.Disable(ctx, bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Disable(%q) = %v, want a refusal naming it", bad, err)
		}
	}
	a := newApplier(t, root)
	r := &api.Rendered{Name: "rendered-worker-x"}
	r.Config.Systemd.Units = []ign3types.Unit{{Name: "-H.service", Enabled: boolp(true), Contents: strp(svc)}}
	err := a.Apply(ctx, nil, r)
	if err == nil || !strings.Contains(err.Error(), "systemd.units[0] (-H.service): name") {
		t.Errorf("Apply of a unit named -H.service = %v, want a refusal naming the unit", err)
	}
	data, err := os.ReadFile(logFile)
	must(t, err)
	want := "--root=" + root + " --no-reload enable -- a.service b@x.timer\n--root=" + root + " is-enabled -- a.service\n"
	if string(data) != want {
		t.Errorf("systemctl calls:\n%s\nwant\n%s", data, want)
	}
}
