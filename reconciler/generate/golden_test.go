package generate_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/generate"
	"stoker.dev/stoker/reconciler/render"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// TestGolden loads each repo under testdata/cases through render.Load
// (which calls the generators and Butane) and compares every generated or
// Butane-made MachineConfig, its files decoded, with
// testdata/golden/<case>.txt. Regenerate with go test -update after
// checking the change.
func TestGolden(t *testing.T) {
	cases, err := os.ReadDir("testdata/cases")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			repo, ps := render.Load(os.DirFS(filepath.Join("testdata/cases", c.Name())), ".", render.LoadOptions{})
			if err := ps.Err(); err != nil {
				t.Fatal(err)
			}
			if len(ps) > 0 {
				t.Fatalf("warnings: %v", ps)
			}
			if _, rps := render.RenderAll(repo, render.RenderOptions{}); rps.Err() != nil {
				t.Fatal(rps.Err())
			}
			got := dump(t, repo)
			golden := filepath.Join("testdata/golden", c.Name()+".txt")
			if *update {
				if err := os.MkdirAll("testdata/golden", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("differs from %s (go test -update to accept):\n%s", golden, got)
			}
		})
	}
}

// dump writes the MachineConfigs that did not come from a YAML file as
// written: generated ones and Butane-made ones.
func dump(t *testing.T, repo *render.Repo) string {
	var b strings.Builder
	for _, mc := range repo.MachineConfigs {
		from := mc.Object.Annotations[generate.GeneratedFromAnnotation]
		if from == "" && !strings.HasSuffix(mc.File, ".bu") {
			continue
		}
		if from == "" {
			from = mc.File
		}
		fmt.Fprintf(&b, "=== %s (role %s) from %s\n", mc.Object.Name, mc.Object.Labels[api.RoleLabel], from)
		files := mc.Object.Ignition.Storage.Files
		sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
		for _, f := range files {
			data, err := api.DecodeFileContents(f.Contents)
			if err != nil {
				t.Fatalf("%s %s: %v", mc.Object.Name, f.Path, err)
			}
			mode := 0
			if f.Mode != nil {
				mode = *f.Mode
			}
			comp := ""
			if f.Contents.Compression != nil && *f.Contents.Compression != "" {
				comp = " compression " + *f.Contents.Compression
			}
			fmt.Fprintf(&b, "--- %s mode %04o%s\n%s", f.Path, mode, comp, data)
			if len(data) > 0 && data[len(data)-1] != '\n' {
				b.WriteString("\n")
			}
		}
		for _, u := range mc.Object.Ignition.Systemd.Units {
			c := ""
			if u.Contents != nil {
				c = *u.Contents
			}
			fmt.Fprintf(&b, "--- unit %s enabled=%v\n%s", u.Name, u.Enabled != nil && *u.Enabled, c)
		}
	}
	return b.String()
}
