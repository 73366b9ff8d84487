package nodeops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// TestParentSymlinkChaseRule: a symlink in a parent directory of a
// managed path is followed only when the link and the directory holding
// it are owned by root and writable by no one else (systemd's
// CHASE_SAFE). RHCOS's /home -> var/home passes; links a user planted do
// not, for writes and for removals, and the refusal names the link.
func TestParentSymlinkChaseRule(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another uid")
	}
	ctx := context.Background()
	const user = 1000

	t.Run("RHCOS links into /var pass", func(t *testing.T) {
		root := newRoot(t)
		for _, l := range []string{"home", "root", "opt", "srv", "usr/local"} {
			must(t, os.MkdirAll(filepath.Join(root, "var", l), 0o755))
			must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, l)), 0o755))
			rel := strings.Repeat("../", strings.Count(l, "/")) + "var/" + l
			must(t, os.Symlink(rel, filepath.Join(root, l)))
		}
		a := newApplier(t, root)
		r := &api.Rendered{Name: "rhcos"}
		for _, p := range []string{"/home/core/a.conf", "/root/b.conf", "/opt/app/c.conf", "/srv/d.conf", "/usr/local/bin/e"} {
			r.Config.Storage.Files = append(r.Config.Storage.Files, cfgFile(p, "x\n", 0o644))
		}
		must(t, a.Apply(ctx, nil, r))
		for _, p := range []string{"var/home/core/a.conf", "var/root/b.conf", "var/opt/app/c.conf", "var/srv/d.conf", "var/usr/local/bin/e"} {
			if got := read(t, root, p); got != "x\n" {
				t.Errorf("%s = %q", p, got)
			}
		}
	})

	refused := []struct {
		name  string
		setup func(t *testing.T, root string)
		path  string // managed file
		link  string // named in the refusal
	}{
		{"user's link in sticky /tmp", func(t *testing.T, root string) {
			must(t, os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
			must(t, os.Chmod(filepath.Join(root, "tmp"), 0o1777))
			must(t, os.Symlink("/etc/cron.d", filepath.Join(root, "tmp/cache")))
			must(t, os.Lchown(filepath.Join(root, "tmp/cache"), user, user))
		}, "/tmp/cache/job", "/tmp/cache"},
		{"root's link in sticky /tmp", func(t *testing.T, root string) {
			must(t, os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
			must(t, os.Chmod(filepath.Join(root, "tmp"), 0o1777))
			must(t, os.Symlink("/etc/cron.d", filepath.Join(root, "tmp/cache")))
		}, "/tmp/cache/job", "/tmp/cache"},
		{"root's link in a user's directory", func(t *testing.T, root string) {
			must(t, os.MkdirAll(filepath.Join(root, "home/alice"), 0o755))
			must(t, os.Chown(filepath.Join(root, "home/alice"), user, user))
			must(t, os.Symlink("/etc/cron.d", filepath.Join(root, "home/alice/cfg")))
		}, "/home/alice/cfg/job", "/home/alice/cfg"},
		{"root's link in a group-writable directory", func(t *testing.T, root string) {
			must(t, os.MkdirAll(filepath.Join(root, "srv/shared"), 0o755))
			must(t, os.Chmod(filepath.Join(root, "srv/shared"), 0o775))
			must(t, os.Symlink("/etc/cron.d", filepath.Join(root, "srv/shared/cfg")))
		}, "/srv/shared/cfg/job", "/srv/shared/cfg"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t)
			must(t, os.MkdirAll(filepath.Join(root, "etc/cron.d"), 0o755))
			tc.setup(t, root)
			a := newApplier(t, root)
			before := snapshot(t, root)
			r := &api.Rendered{Name: "evil"}
			r.Config.Storage.Files = []ign3types.File{cfgFile(tc.path, "* * * * * root sh -c evil\n", 0o644)}
			err := a.Apply(ctx, nil, r)
			if !errors.Is(err, ErrUnsafeSymlink) || !strings.Contains(err.Error(), "symlink "+tc.link+":") {
				t.Fatalf("Apply = %v, want a refused symlink naming %s", err, tc.link)
			}
			if after := snapshot(t, root); len(after) != len(before) {
				t.Errorf("something was written:\nbefore %v\nafter  %v", before, after)
			}
			if _, err := os.Lstat(filepath.Join(root, "etc/cron.d/job")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("wrote through the link: %v", err)
			}
		})
	}

	t.Run("no delete through a link planted after the write", func(t *testing.T) {
		root := newRoot(t)
		must(t, os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
		must(t, os.Chmod(filepath.Join(root, "tmp"), 0o1777))
		must(t, os.MkdirAll(filepath.Join(root, "etc/cron.d"), 0o755))
		must(t, os.WriteFile(filepath.Join(root, "etc/cron.d/job"), []byte("keep\n"), 0o644))
		a := newApplier(t, root)
		v1 := &api.Rendered{Name: "v1"}
		v1.Config.Storage.Files = []ign3types.File{cfgFile("/tmp/cache/job", "x\n", 0o644)}
		must(t, a.Apply(ctx, nil, v1))
		must(t, a.Commit())
		// The user swaps their directory for a link to /etc/cron.d.
		must(t, os.RemoveAll(filepath.Join(root, "tmp/cache")))
		must(t, os.Symlink("/etc/cron.d", filepath.Join(root, "tmp/cache")))
		must(t, os.Lchown(filepath.Join(root, "tmp/cache"), user, user))
		err := a.Apply(ctx, v1, &api.Rendered{Name: "v2"})
		if !errors.Is(err, ErrUnsafeSymlink) || !strings.Contains(err.Error(), "symlink /tmp/cache:") {
			t.Fatalf("Apply = %v, want a refused symlink naming /tmp/cache", err)
		}
		if got := read(t, root, "etc/cron.d/job"); got != "keep\n" {
			t.Errorf("/etc/cron.d/job = %q: deleted or changed through the link", got)
		}
	})
}
