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

// TestApplyDirectoriesAndLinks follows reconcilable() in MCO's
// pkg/daemon/update.go (openshift/machine-config-operator@3b7ffc348eb7d127bf570c64f75c6d90f65408e0):
// the daemon refuses any change to storage.directories and any change to
// storage.links that leaves links in the new config, and accepts configs
// whose directories and links are unchanged — it writes neither
// (updateFiles writes files and units only). A refused move writes nothing.
func TestApplyDirectoriesAndLinks(t *testing.T) {
	dir := func(p string, mode int) ign3types.Directory {
		return ign3types.Directory{Node: ign3types.Node{Path: p}, DirectoryEmbedded1: ign3types.DirectoryEmbedded1{Mode: intp(mode)}}
	}
	link := func(p, target string) ign3types.Link {
		return ign3types.Link{Node: ign3types.Node{Path: p}, LinkEmbedded1: ign3types.LinkEmbedded1{Target: strp(target)}}
	}
	cfg := func(name, data string, dirs []ign3types.Directory, links []ign3types.Link) *api.Rendered {
		r := &api.Rendered{Name: name}
		r.Config.Storage.Files = []ign3types.File{cfgFile("/etc/app.conf", data, 0o644)}
		r.Config.Storage.Directories = dirs
		r.Config.Storage.Links = links
		return r
	}
	dirs := []ign3types.Directory{dir("/etc/app.d", 0o755)}
	links := []ign3types.Link{link("/etc/app.link", "/etc/app.conf")}
	base := cfg("rendered-worker-1", "v1\n", dirs, links)
	tests := []struct {
		name    string
		from    *api.Rendered
		to      *api.Rendered
		refused string // the section refused; "" = applied
	}{
		{"unchanged directories and links, file changed", base, cfg("rendered-worker-2", "v2\n", dirs, links), ""},
		{"every link removed", base, cfg("rendered-worker-2", "v2\n", dirs, nil), ""},
		{"directory added", base, cfg("rendered-worker-2", "v2\n", append([]ign3types.Directory{dir("/etc/new.d", 0o755)}, dirs...), links), "storage.directories"},
		{"directory mode changed", base, cfg("rendered-worker-2", "v2\n", []ign3types.Directory{dir("/etc/app.d", 0o700)}, links), "storage.directories"},
		{"directory removed", base, cfg("rendered-worker-2", "v2\n", nil, links), "storage.directories"},
		{"link target changed", base, cfg("rendered-worker-2", "v2\n", dirs, []ign3types.Link{link("/etc/app.link", "/etc/other")}), "storage.links"},
		{"fresh node: directories are a change", nil, base, "storage.directories"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t)
			a := newApplier(t, root)
			if tc.from != nil {
				must(t, os.WriteFile(filepath.Join(root, "etc/app.conf"), []byte("v1\n"), 0o644))
			}
			before := snapshot(t, root)
			err := a.Apply(context.Background(), tc.from, tc.to)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("apply: %v", err)
				}
				if got := read(t, root, "/etc/app.conf"); got != "v2\n" {
					t.Errorf("/etc/app.conf = %q, want v2", got)
				}
				for _, p := range []string{"etc/app.d", "etc/app.link"} {
					if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s: written (%v); the node writes no directories or links", p, err)
					}
				}
				if d, err := a.Validate(context.Background(), tc.to); err != nil || len(d) != 0 {
					t.Errorf("validate: %v, drift %+v", err, d)
				}
				return
			}
			var se *StepError
			if !errors.As(err, &se) || !se.NothingWritten || !errors.Is(err, ErrIrreconcilable) {
				t.Fatalf("apply: %v, want a refusal with nothing written", err)
			}
			_, why := api.StorageNodesUnreconcilable(tc.from, tc.to)
			if msg := err.Error(); why == "" || !strings.Contains(msg, tc.refused) || !strings.Contains(msg, why) {
				t.Errorf("error %q does not name %s and MCO's reason %q", msg, tc.refused, why)
			}
			if after := snapshot(t, root); !reflect.DeepEqual(before, after) {
				t.Errorf("refused apply changed the tree")
			}
		})
	}
}
