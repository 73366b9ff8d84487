package nodeops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

func strp(s string) *string { return &s }
func boolp(b bool) *bool    { return &b }
func intp(i int) *int       { return &i }

// newRoot makes a node tree with passwd/group holding core (1000).
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"),
		[]byte("root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:CoreOS Admin:/var/home/core:/bin/bash\nchrony:x:994:992::/var/lib/chrony:/sbin/nologin\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/group"),
		[]byte("root:x:0:\nwheel:x:10:core\ncore:x:1000:\nchrony:x:992:\n"), 0o644))
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newApplier(t *testing.T, root string) *Applier {
	t.Helper()
	a, err := NewApplier(ApplierOptions{Root: root, StateDir: filepath.Join(t.TempDir(), "state"), Systemd: &RootSystemd{Root: root}})
	must(t, err)
	return a
}

func cfgFile(path, data string, mode int) ign3types.File {
	f := ign3types.File{Node: ign3types.Node{Path: path}}
	f.Contents.Source = strp("data:," + url.PathEscape(data))
	f.Mode = intp(mode)
	return f
}

const svc = "[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"

// cfgV1 and cfgV2 differ in every way the applier handles.
func cfgV1() *api.Rendered {
	r := &api.Rendered{Name: "rendered-worker-1"}
	r.Config.Storage.Files = []ign3types.File{
		cfgFile("/etc/chrony.conf", "server a\n", 0o644),
		cfgFile("/etc/stoker/leaves.conf", "bye\n", 0o600),
		cfgFile("/etc/hosts", "127.0.0.1 managed\n", 0o644),
	}
	chrony := cfgFile("/var/lib/chrony/drift", "0.0\n", 0o640)
	chrony.User.Name = strp("chrony")
	chrony.Group.Name = strp("chrony")
	r.Config.Storage.Files = append(r.Config.Storage.Files, chrony)
	r.Config.Systemd.Units = []ign3types.Unit{
		{Name: "a.service", Contents: strp(svc), Enabled: boolp(true),
			Dropins: []ign3types.Dropin{{Name: "10-env.conf", Contents: strp("[Service]\nEnvironment=A=1\n")}}},
		{Name: "old.service", Contents: strp(svc), Enabled: boolp(true)},
	}
	r.Config.Passwd.Users = []ign3types.PasswdUser{{Name: "core", SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{"ssh-ed25519 AAAA one"}}}
	return r
}

func cfgV2() *api.Rendered {
	r := &api.Rendered{Name: "rendered-worker-2"}
	r.Config.Storage.Files = []ign3types.File{
		cfgFile("/etc/chrony.conf", "server b\n", 0o600),
		cfgFile("/etc/stoker/new.conf", "hello\n", 0o644),
	}
	r.Config.Systemd.Units = []ign3types.Unit{
		{Name: "a.service", Contents: strp(svc), Enabled: boolp(false)},
		{Name: "masked.service", Mask: boolp(true)},
		{Name: "b.service", Contents: strp(svc), Enabled: boolp(true)},
	}
	r.Config.Passwd.Users = []ign3types.PasswdUser{{Name: "core", SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{"ssh-ed25519 AAAA one", "ssh-ed25519 BBBB two"}}}
	return r
}

// snapshot records every path under dir with type, mode, owner and
// content, to prove a rollback left nothing changed.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		s := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			s += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			s += " " + string(b)
		case fi.IsDir():
			s = "dir" // created parent directories may stay
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = s
		return nil
	}))
	return out
}

// withoutDirs drops directory entries: a rollback may leave empty parents.
func withoutDirs(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != "dir" {
			out[k] = v
		}
	}
	return out
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	must(t, err)
	return string(b)
}

func TestApplyFreshThenUpdate(t *testing.T) {
	ctx := context.Background()
	root := newRoot(t)
	// /etc/hosts exists before Stoker: it must be backed up and come back.
	must(t, os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("127.0.0.1 original\n"), 0o640))
	a := newApplier(t, root)

	must(t, a.Apply(ctx, nil, cfgV1()))
	must(t, a.Commit())
	findings, err := a.Validate(ctx, cfgV1())
	must(t, err)
	if len(findings) != 0 {
		t.Fatalf("after applying v1, drift: %+v", findings)
	}
	if got := read(t, root, "etc/hosts"); got != "127.0.0.1 managed\n" {
		t.Errorf("/etc/hosts = %q", got)
	}
	orig := OrigPath(a.opts.StateDir, "/etc/hosts")
	if b, err := os.ReadFile(orig); err != nil || string(b) != "127.0.0.1 original\n" {
		t.Errorf("original of /etc/hosts: %q, %v", b, err)
	}
	// Owner names resolve in the root's passwd/group, not the host's.
	fi, err := os.Stat(filepath.Join(root, "var/lib/chrony/drift"))
	must(t, err)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 994 || st.Gid != 992 || fi.Mode().Perm() != 0o640 {
		t.Errorf("drift file: uid %d gid %d mode %v", st.Uid, st.Gid, fi.Mode())
	}
	// ssh keys: home from passwd, 0700 dirs, 0600 file, owned by core.
	keyFile := filepath.Join(root, "var/home/core", SSHKeyFile)
	for p, want := range map[string]os.FileMode{keyFile: 0o600, filepath.Dir(keyFile): 0o700 | fs.ModeDir, filepath.Join(root, "var/home/core/.ssh"): 0o700 | fs.ModeDir} {
		fi, err := os.Stat(p)
		must(t, err)
		if st := fi.Sys().(*syscall.Stat_t); fi.Mode() != want || st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("%s: mode %v owner %d:%d, want %v 1000:1000", p, fi.Mode(), st.Uid, st.Gid, want)
		}
	}
	// systemctl --root really created the wants symlinks.
	if l, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/a.service")); err != nil || l != "/etc/systemd/system/a.service" {
		t.Errorf("a.service wants link: %q, %v", l, err)
	}

	must(t, a.Apply(ctx, cfgV1(), cfgV2()))
	must(t, a.Commit())
	findings, err = a.Validate(ctx, cfgV2())
	must(t, err)
	if len(findings) != 0 {
		t.Fatalf("after applying v2, drift: %+v", findings)
	}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"hosts restored from original", read(t, root, "etc/hosts"), "127.0.0.1 original\n"},
		{"chrony.conf updated", read(t, root, "etc/chrony.conf"), "server b\n"},
		{"ssh keys", read(t, root, "var/home/core/"+SSHKeyFile), "ssh-ed25519 AAAA one\nssh-ed25519 BBBB two\n"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	for _, gone := range []string{"etc/stoker/leaves.conf", "etc/systemd/system/old.service",
		"etc/systemd/system/a.service.d/10-env.conf", "etc/systemd/system/multi-user.target.wants/a.service",
		"etc/systemd/system/multi-user.target.wants/old.service", "var/lib/chrony/drift"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s should be gone: %v", gone, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/hosts")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("/etc/hosts mode after restore: %v %v", fi.Mode(), err)
	}
	if _, err := os.Lstat(orig); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("original should be dropped at commit: %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/systemd/system/masked.service")); l != DevNull {
		t.Errorf("masked.service link = %q", l)
	}
	if j, _ := ReadJournal(a.opts.StateDir); j != nil {
		t.Errorf("journal left after commit: %+v", j)
	}
}

// failingFS wraps the real filesystem and fails the nth mutation; when
// swap is set it plants a symlink at the target instead, as an attacker
// racing the applier would.
type failingFS struct {
	osFileSystem
	n, calls int
	swap     string
	// stateDir: mutations under it (journal, originals) pass uncounted.
	stateDir string
}

func (f *failingFS) passes(target string) bool {
	return f.stateDir != "" && strings.HasPrefix(target, f.stateDir+"/")
}

func (f *failingFS) WriteFile(target string, data io.Reader, o FileOptions) error {
	if f.passes(target) {
		return f.osFileSystem.WriteFile(target, data, o)
	}
	f.calls++
	if f.calls == f.n {
		if f.swap != "" {
			_ = os.Remove(target)
			if err := os.Symlink(f.swap, target); err != nil {
				return err
			}
			return f.osFileSystem.WriteFile(target, data, o)
		}
		return fmt.Errorf("injected rename failure for %s", target)
	}
	return f.osFileSystem.WriteFile(target, data, o)
}

func (f *failingFS) Remove(target string) error {
	if f.passes(target) {
		return f.osFileSystem.Remove(target)
	}
	f.calls++
	if f.calls == f.n && f.swap == "" {
		return fmt.Errorf("injected remove failure for %s", target)
	}
	return f.osFileSystem.Remove(target)
}

func TestApplyFailureRollsBackEverything(t *testing.T) {
	ctx := context.Background()
	// v1→v2 makes 5 file mutations (4 writes, 3 removals with originals
	// handled): fail at each of them.
	for n := 1; n <= 7; n++ {
		t.Run(fmt.Sprintf("fail at mutation %d", n), func(t *testing.T) {
			root := newRoot(t)
			must(t, os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("orig\n"), 0o644))
			a := newApplier(t, root)
			must(t, a.Apply(ctx, nil, cfgV1()))
			must(t, a.Commit())
			before := snapshot(t, root)
			stateBefore := snapshot(t, a.opts.StateDir)

			ffs := &failingFS{n: n, stateDir: a.opts.StateDir}
			a.fs = ffs
			err := a.Apply(ctx, cfgV1(), cfgV2())
			var se *StepError
			if ffs.calls < n {
				t.Skipf("only %d mutations", ffs.calls)
			}
			if !errors.As(err, &se) || se.RollbackErr != nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("Apply error = %v, want a rolled-back StepError", err)
			}
			if !reflect.DeepEqual(withoutDirs(snapshot(t, root)), withoutDirs(before)) {
				t.Errorf("root changed after rollback (%s):\nbefore %v\nafter  %v", err, before, snapshot(t, root))
			}
			if !reflect.DeepEqual(withoutDirs(snapshot(t, a.opts.StateDir)), withoutDirs(stateBefore)) {
				t.Errorf("state dir changed after rollback:\nbefore %v\nafter  %v", stateBefore, snapshot(t, a.opts.StateDir))
			}
			findings, verr := a.Validate(ctx, cfgV1())
			must(t, verr)
			if len(findings) != 0 {
				t.Errorf("v1 no longer valid after rollback: %+v", findings)
			}
		})
	}
}

func TestRecoverRollsBackInterruptedApply(t *testing.T) {
	ctx := context.Background()
	root := newRoot(t)
	a := newApplier(t, root)
	must(t, a.Apply(ctx, nil, cfgV1()))
	must(t, a.Commit())
	before := snapshot(t, root)

	// Simulate a crash half-way: apply v2 fully, then set the journal back
	// to "applying" as if the process died before marking it done.
	must(t, a.Apply(ctx, cfgV1(), cfgV2()))
	j, err := ReadJournal(a.opts.StateDir)
	must(t, err)
	j.State = JournalApplying
	tx := &txn{a: a, j: *j}
	must(t, tx.save())

	// A fresh applier (a restarted agent) refuses to apply over it...
	b := newApplierAt(t, root, a.opts.StateDir)
	if err := b.Apply(ctx, cfgV1(), cfgV2()); !errors.Is(err, ErrJournalPending) {
		t.Fatalf("Apply over a pending journal: %v", err)
	}
	// ...and Recover puts v1 back.
	got, err := b.Recover(ctx)
	must(t, err)
	if got == nil || got.To != "rendered-worker-2" {
		t.Fatalf("Recover returned %+v", got)
	}
	if !reflect.DeepEqual(withoutDirs(snapshot(t, root)), withoutDirs(before)) {
		t.Errorf("root after recover differs:\nbefore %v\nafter  %v", before, snapshot(t, root))
	}
	if j, _ := ReadJournal(a.opts.StateDir); j != nil {
		t.Errorf("journal left after recover")
	}
	// Recover with nothing pending is a no-op.
	if j, err := b.Recover(ctx); j != nil || err != nil {
		t.Errorf("second Recover: %v %v", j, err)
	}
}

func TestRollbackAfterApplied(t *testing.T) {
	ctx := context.Background()
	root := newRoot(t)
	must(t, os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("orig\n"), 0o644))
	a := newApplier(t, root)
	before := snapshot(t, root)
	must(t, a.Apply(ctx, nil, cfgV1()))
	j, err := a.Recover(ctx)
	must(t, err)
	if j == nil || j.State != JournalApplied {
		t.Fatalf("Recover after a finished Apply: %+v", j)
	}
	must(t, a.Rollback(ctx))
	if !reflect.DeepEqual(withoutDirs(snapshot(t, root)), withoutDirs(before)) {
		t.Errorf("root after rollback differs:\nbefore %v\nafter  %v", before, snapshot(t, root))
	}
	if _, err := os.Lstat(OrigPath(a.opts.StateDir, "/etc/hosts")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("original saved by the rolled-back apply should be gone: %v", err)
	}
}

func newApplierAt(t *testing.T, root, stateDir string) *Applier {
	t.Helper()
	a, err := NewApplier(ApplierOptions{Root: root, StateDir: stateDir, Systemd: &RootSystemd{Root: root}})
	must(t, err)
	return a
}

func TestHostileInputWritesNothing(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "victim"), []byte("safe\n"), 0o644))
	tests := []struct {
		name    string
		prepare func(t *testing.T, root string)
		file    string
		wantErr string
	}{
		{"dot-dot path", nil, "/etc/../../" + strings.TrimPrefix(outside, "/") + "/victim", "contains .."},
		{"relative path", nil, "etc/foo", "not absolute"},
		{"target is a symlink out of root", func(t *testing.T, root string) {
			must(t, os.Symlink(filepath.Join(outside, "victim"), filepath.Join(root, "etc/evil")))
		}, "/etc/evil", "is a symlink"},
		{"target is a directory", func(t *testing.T, root string) {
			must(t, os.MkdirAll(filepath.Join(root, "etc/adir"), 0o755))
		}, "/etc/adir", "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t)
			if tc.prepare != nil {
				tc.prepare(t, root)
			}
			before := snapshot(t, root)
			outBefore := snapshot(t, outside)
			a := newApplier(t, root)
			r := &api.Rendered{Name: "evil"}
			r.Config.Storage.Files = []ign3types.File{cfgFile("/etc/fine.conf", "x", 0o644), cfgFile(tc.file, "pwned\n", 0o644)}
			err := a.Apply(ctx, nil, r)
			if err == nil || !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Apply = %v, want ErrUnsafePath with %q", err, tc.wantErr)
			}
			if !reflect.DeepEqual(snapshot(t, root), before) {
				t.Errorf("root changed")
			}
			if !reflect.DeepEqual(snapshot(t, outside), outBefore) {
				t.Errorf("outside changed")
			}
		})
	}
}

func TestSymlinkedParentStaysInsideRoot(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	root := newRoot(t)
	// /etc/conf.d -> <outside> (absolute) and /etc/up -> ../../../.. :
	// both must resolve inside root, as in a chroot.
	must(t, os.Symlink(outside, filepath.Join(root, "etc/conf.d")))
	must(t, os.Symlink("../../../../../../..", filepath.Join(root, "etc/up")))
	a := newApplier(t, root)
	r := &api.Rendered{Name: "links"}
	r.Config.Storage.Files = []ign3types.File{cfgFile("/etc/conf.d/a.conf", "a\n", 0o644), cfgFile("/etc/up/b.conf", "b\n", 0o644)}
	must(t, a.Apply(ctx, nil, r))
	entries, err := os.ReadDir(outside)
	must(t, err)
	if len(entries) != 0 {
		t.Errorf("wrote outside root: %v", entries)
	}
	if got := read(t, root, filepath.Join(outside, "a.conf")); got != "a\n" {
		t.Errorf("a.conf inside root = %q", got)
	}
	if got := read(t, root, "b.conf"); got != "b\n" {
		t.Errorf("b.conf = %q", got)
	}
}

func TestSymlinkSwappedBetweenPlanAndWrite(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	must(t, os.WriteFile(victim, []byte("safe\n"), 0o644))
	root := newRoot(t)
	a := newApplier(t, root)
	before := snapshot(t, root)
	// The second file write finds its target swapped for a symlink.
	a.fs = &failingFS{n: 2, swap: victim, stateDir: a.opts.StateDir}
	r := &api.Rendered{Name: "race"}
	r.Config.Storage.Files = []ign3types.File{cfgFile("/etc/a.conf", "a\n", 0o644), cfgFile("/etc/b.conf", "b\n", 0o644)}
	err := a.Apply(ctx, nil, r)
	if !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), "write file /etc/b.conf") {
		t.Fatalf("Apply = %v, want a refused symlink at /etc/b.conf", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "safe\n" {
		t.Errorf("victim changed: %q", got)
	}
	after := withoutDirs(snapshot(t, root))
	if !reflect.DeepEqual(after, withoutDirs(before)) {
		t.Errorf("root not rolled back:\nbefore %v\nafter  %v", before, after)
	}
}

func TestValidateFindsDrift(t *testing.T) {
	ctx := context.Background()
	root := newRoot(t)
	a := newApplier(t, root)
	must(t, a.Apply(ctx, nil, cfgV1()))
	must(t, a.Commit())
	must(t, os.WriteFile(filepath.Join(root, "etc/chrony.conf"), []byte("tampered\n"), 0o644))
	must(t, os.Chmod(filepath.Join(root, "etc/hosts"), 0o666))
	must(t, os.Chown(filepath.Join(root, "etc/stoker/leaves.conf"), 5, 5))
	must(t, os.Remove(filepath.Join(root, "var/lib/chrony/drift")))
	must(t, os.Remove(filepath.Join(root, "etc/systemd/system/a.service.d/10-env.conf")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(root, "etc/systemd/system/a.service.d/10-env.conf")))
	must(t, (&RootSystemd{Root: root}).Disable(ctx, "old.service"))

	findings, err := a.Validate(ctx, cfgV1())
	must(t, err)
	var got []string
	for _, f := range findings {
		got = append(got, f.Kind+" "+f.Path+f.Unit)
	}
	sort.Strings(got)
	want := []string{
		"content /etc/chrony.conf",
		"missing /var/lib/chrony/drift",
		"mode /etc/hosts",
		"owner /etc/stoker/leaves.conf",
		"symlink /etc/systemd/system/a.service.d/10-env.conf",
		"unit old.service",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings = %q, want %q", got, want)
	}
}

func TestRunActions(t *testing.T) {
	root := newRoot(t)
	sd := &RootSystemd{Root: root}
	policy := &api.NodeDisruptionPolicy{
		Files: []api.FilePolicy{{Path: "/etc/chrony.conf", Actions: []api.Action{{Type: api.ActionRestart, Restart: &api.ServiceTarget{ServiceName: "chronyd.service"}}}}},
		Units: []api.UnitPolicy{{Name: "a.service", Actions: []api.Action{{Type: api.ActionReload, Reload: &api.ServiceTarget{ServiceName: "a.service"}}}}},
	}
	from := cfgV1()
	to := cfgV1()
	to.Name = "x"
	to.Config.Storage.Files[0] = cfgFile("/etc/chrony.conf", "server c\n", 0o644)
	to.Config.Systemd.Units[0].Dropins = nil
	plan := api.PlanChanges(from, to, policy)
	must(t, RunActions(context.Background(), sd, plan))
	want := []string{"daemon-reload", "reload a.service", "restart chronyd.service"}
	if !reflect.DeepEqual(sd.Log(), want) {
		t.Errorf("actions = %q, want %q (plan %+v)", sd.Log(), want, plan)
	}
}
