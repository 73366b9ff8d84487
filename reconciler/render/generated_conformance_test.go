package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/BurntSushi/toml"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/generate"
)

// genConformanceDir holds what MCO's generating controllers produced from
// KubeletConfig, ContainerRuntimeConfig, the mirror kinds and Image
// cluster (see its README); third-party data, read in place.
const genConformanceDir = "../../../shared/mco-conformance/generated"

// genDocumentedDifferences are cases where Stoker deliberately differs
// from MCO; docs/generated.md says why. Each is still run, and must
// still differ, so a fix shows up.
var genDocumentedDifferences = map[string]string{}

type genExpected struct {
	Result     string `json:"result"`
	Reason     string `json:"reason"`
	Rejections []struct {
		Kind, Name, Reason string
	} `json:"rejections"`
	Pools map[string]struct {
		Files map[string]struct {
			Mode   int    `json:"mode"`
			Format string `json:"format"`
			Text   string `json:"text"`
		} `json:"files"`
		Generated   map[string]map[string]json.RawMessage `json:"generated"`
		MergeInputs []string                              `json:"mergeInputs"`
	} `json:"pools"`
}

// TestMCOGeneratedConformance runs every case of
// ../shared/mco-conformance/generated through Load and RenderAll and
// holds the result to what MCO's controllers did: rejected cases must be
// rejected (MCO's validateUserKubeletConfig,
// validateUserContainerRuntimeConfig, validateRegistriesConfScopes), and
// for generated cases each pool's final file at every path a generated
// MachineConfig writes must match (syncImageConfig →
// updateRegistriesConfig / updatePolicyJSON /
// updateSearchRegistriesConfig; syncContainerRuntimeConfig →
// createCRIODropinFiles / updateStorageConfig; syncKubeletConfig →
// generateKubeletIgnFiles), TOML, YAML and JSON compared semantically
// with zero values dropped (MCO's encoders write them), text byte for
// byte; and the pool's MachineConfigs must be MCO's merge inputs, less
// MCO's empty registries MachineConfig.
func TestMCOGeneratedConformance(t *testing.T) {
	cases, err := os.ReadDir(genConformanceDir)
	if errors.Is(err, os.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; CI must have shared/ beside the repo", genConformanceDir)
		}
		t.Skipf("%s is absent", genConformanceDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	agree, differ := 0, 0
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		name := c.Name()
		t.Run(name, func(t *testing.T) {
			diffs := genRunCase(t, filepath.Join(genConformanceDir, name))
			why, documented := genDocumentedDifferences[name]
			switch {
			case len(diffs) == 0 && documented:
				t.Errorf("documented difference (%s) no longer differs: remove it", why)
			case len(diffs) == 0:
				agree++
			case documented:
				differ++
				t.Logf("documented difference: %s", why)
			default:
				t.Errorf("disagrees with MCO:\n  %s", strings.Join(diffs, "\n  "))
			}
		})
	}
	t.Logf("%d cases agree with MCO, %d are documented differences", agree, differ)
	if agree == 0 {
		t.Fatal("no case ran")
	}
}

// genRunCase renders one case and returns its disagreements.
func genRunCase(t *testing.T, dir string) []string {
	t.Helper()
	var exp genExpected
	raw, err := os.ReadFile(filepath.Join(dir, "mco-expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fsys[e.Name()] = &fstest.MapFile{Data: b}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "CORPUS")); err == nil {
		f := strings.TrimSpace(string(b))
		data, err := os.ReadFile(filepath.Join(dir, "../../../corpus/valid", f))
		if err != nil {
			t.Fatal(err)
		}
		fsys[f] = &fstest.MapFile{Data: data}
	}
	repo, ps := Load(fsys, ".", LoadOptions{})
	var res *RenderResult
	if len(ps.Errors()) == 0 {
		var rps api.Problems
		res, rps = RenderAll(repo, RenderOptions{})
		ps = append(ps, rps...)
	}
	if exp.Result == "rejected" {
		if len(ps.Errors()) > 0 {
			t.Logf("rejected as MCO did: %s", ps.Errors()[0])
			return nil
		}
		// An object MCO refuses on its own (a selector matching no
		// pool) leaves the rest of the cluster rendering: a warning on
		// the object and nothing generated from it agrees.
		for _, rj := range exp.Rejections {
			if genWarned(ps, fsys, rj.Kind, rj.Name) && !genFrom(repo, rj.Kind, rj.Name) {
				t.Logf("refused as MCO did, with a warning: %s", ps.Warnings()[0])
				return nil
			}
		}
		return []string{"MCO rejected it (" + exp.Reason + "); Stoker rendered it"}
	}
	if len(ps.Errors()) > 0 {
		return []string{"MCO generated it; Stoker refused: " + ps.Errors().Err().Error()}
	}
	empty := map[string]bool{} // MCO's registries MachineConfigs with no file
	for _, pool := range exp.Pools {
		for n, g := range pool.Generated {
			empty[n] = len(g) == 0
		}
	}
	var diffs []string
	for poolName, want := range exp.Pools {
		var pr *PoolRender
		for i := range res.Pools {
			if res.Pools[i].Pool.Object.Name == poolName {
				pr = &res.Pools[i]
			}
		}
		if pr == nil {
			diffs = append(diffs, "pool "+poolName+" not rendered")
			continue
		}
		var wantMCs []string
		for _, n := range want.MergeInputs {
			if empty[n] {
				continue // MCO's empty registries MachineConfig
			}
			wantMCs = append(wantMCs, n)
		}
		if !reflect.DeepEqual(wantMCs, pr.MachineConfigs) {
			diffs = append(diffs, "pool "+poolName+": MachineConfigs "+strings.Join(pr.MachineConfigs, ",")+", MCO merges "+strings.Join(wantMCs, ","))
		}
		written := genWrittenPaths(repo, pr.MachineConfigs)
		for _, p := range written {
			if _, ok := want.Files[p]; !ok {
				diffs = append(diffs, "pool "+poolName+": Stoker generates "+p+", MCO does not")
			}
		}
		for _, p := range sortedFileKeys(want.Files) {
			wf := want.Files[p]
			got, mode, ok := genRenderedFile(pr.Rendered, p)
			if !ok {
				diffs = append(diffs, "pool "+poolName+": "+p+" missing")
				continue
			}
			if mode != wf.Mode {
				diffs = append(diffs, "pool "+poolName+": "+p+": mode differs")
			}
			if d := genCompare(wf.Format, []byte(wf.Text), got); d != "" {
				diffs = append(diffs, "pool "+poolName+": "+p+": "+d)
			}
		}
	}
	sort.Strings(diffs)
	return diffs
}

func sortedFileKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// genWrittenPaths lists the paths Stoker's generated MachineConfigs among
// names write.
func genWrittenPaths(repo *Repo, names []string) []string {
	var out []string
	for _, mc := range repo.MachineConfigs {
		if _, ok := mc.Object.Annotations[generate.GeneratedFromAnnotation]; !ok {
			continue
		}
		for _, n := range names {
			if n == mc.Object.Name {
				for _, f := range mc.Object.Ignition.Storage.Files {
					out = append(out, f.Path)
				}
			}
		}
	}
	return out
}

func genRenderedFile(r *api.Rendered, p string) ([]byte, int, bool) {
	for _, f := range r.Config.Storage.Files {
		if f.Path != p {
			continue
		}
		data, err := api.DecodeFileContents(f.Contents)
		if err != nil {
			return nil, 0, false
		}
		mode := 0o644
		if f.Mode != nil {
			mode = *f.Mode
		}
		return data, mode, true
	}
	return nil, 0, false
}

// genCompare compares want and got as format; "" when they agree.
func genCompare(format string, want, got []byte) string {
	var w, g any
	var err error
	switch format {
	case "toml":
		var wm, gm map[string]any
		if _, err = toml.Decode(string(want), &wm); err == nil {
			_, err = toml.Decode(string(got), &gm)
		}
		w, g = wm, gm
	case "yaml", "json":
		if err = yaml.Unmarshal(want, &w); err == nil {
			err = yaml.Unmarshal(got, &g)
		}
	default:
		if bytes.Equal(want, got) {
			return ""
		}
		return "text differs:\n--- MCO\n" + string(want) + "\n--- Stoker\n" + string(got)
	}
	if err != nil {
		return "decode: " + err.Error()
	}
	// A zero value Stoker writes where MCO has no key at all is a real
	// difference (pids_limit = 0 would set it); zeros MCO writes too, or
	// only MCO writes, are its encoder's and compare as absent.
	if extra := genZeroExtra(g, w, ""); len(extra) > 0 {
		return format + ": Stoker writes zero values MCO does not: " + strings.Join(extra, ", ")
	}
	w, g = genDropZero(w), genDropZero(g)
	if reflect.DeepEqual(w, g) {
		return ""
	}
	return format + " differs:\n--- MCO\n" + string(want) + "\n--- Stoker\n" + string(got)
}

// genDropZero removes zero values (0, "", false, "0s", empty maps and
// lists) recursively, and makes numbers float64.
func genDropZero(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range t {
			if e = genDropZero(e); e != nil {
				out[k] = e
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []map[string]any:
		var out []any
		for _, e := range t {
			out = append(out, genDropZero(e))
		}
		return out
	case []any:
		if len(t) == 0 {
			return nil
		}
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = genDropZero(e)
		}
		return out
	case string:
		if t == "" || t == "0s" || t == "0" {
			return nil
		}
	case bool:
		if !t {
			return nil
		}
	case int64:
		if t == 0 {
			return nil
		}
		return float64(t)
	case float64:
		if t == 0 {
			return nil
		}
	}
	return v
}

// genWarned reports whether a warning names the file holding kind/name.
func genWarned(ps api.Problems, fsys fstest.MapFS, kind, name string) bool {
	for _, p := range ps.Warnings() {
		if f, ok := fsys[p.File]; ok && bytes.Contains(f.Data, []byte("kind: "+kind)) && bytes.Contains(f.Data, []byte("name: "+name)) {
			return true
		}
	}
	return false
}

// genFrom reports whether a generated MachineConfig came from kind/name.
func genFrom(repo *Repo, kind, name string) bool {
	for _, mc := range repo.MachineConfigs {
		if strings.Contains(mc.Object.Annotations[generate.GeneratedFromAnnotation], kind+"/"+name+" ") {
			return true
		}
	}
	return false
}

// genZeroExtra lists the paths where got holds a zero leaf and want has
// no key.
func genZeroExtra(got, want any, at string) []string {
	gm, ok := got.(map[string]any)
	if !ok {
		return nil
	}
	wm, _ := want.(map[string]any)
	var out []string
	for k, v := range gm {
		wv, has := wm[k]
		if !has {
			if genDropZero(v) == nil {
				out = append(out, at+k)
			}
			continue
		}
		out = append(out, genZeroExtra(v, wv, at+k+".")...)
	}
	sort.Strings(out)
	return out
}
