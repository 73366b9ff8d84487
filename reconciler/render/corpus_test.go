package render

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"stoker.dev/stoker/api"
)

// corpusDir holds real OpenShift manifests (see its README); it is read in
// place, never copied into this repo.
const corpusDir = "../../../shared/corpus"

func corpusFiles(t testing.TB, sub string) map[string][]byte {
	t.Helper()
	dir := filepath.Join(corpusDir, sub)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s is absent", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestCorpusValid: every valid/ file loads, validates and renders beside
// the default master and worker pools, with no error.
func TestCorpusValid(t *testing.T) {
	for name, data := range corpusFiles(t, "valid") {
		t.Run(name, func(t *testing.T) {
			repo, ps := LoadBytes(name, data, LoadOptions{})
			if needsBase(ps) {
				// A KubeletConfig merges onto the pool's kubelet.conf and
				// an overlaySize onto its storage.conf: a repo provides
				// them (on a cluster MCO's templates do). Add the bases
				// MCO's conformance cases were run with.
				repo, ps = Load(withBases(t, name, data), ".", LoadOptions{})
			}
			if err := ps.Err(); err != nil {
				t.Fatal(err)
			}
			if repo.Pool("master") == nil || repo.Pool("worker") == nil {
				t.Fatal("default pools missing")
			}
			res, ps := RenderAll(repo, RenderOptions{})
			if err := ps.Err(); err != nil {
				t.Fatal(err)
			}
			if len(res.Pools) != len(repo.Pools) {
				t.Fatalf("rendered %d of %d pools", len(res.Pools), len(repo.Pools))
			}
		})
	}
}

// TestCorpusInvalid: every invalid/ file is rejected, naming the file.
func TestCorpusInvalid(t *testing.T) {
	for name, data := range corpusFiles(t, "invalid") {
		t.Run(name, func(t *testing.T) {
			repo, ps := LoadBytes(name, data, LoadOptions{})
			if ps.Err() == nil {
				_, ps = RenderAll(repo, RenderOptions{})
			}
			errs := ps.Errors()
			if len(errs) == 0 {
				t.Fatal("accepted")
			}
			for _, p := range errs {
				if p.File != name {
					t.Errorf("problem names %q, want %q: %s", p.File, name, p)
				}
			}
		})
	}
}

// TestCorpusAsOneRepo loads the whole valid/ directory as one repo, as a
// user who dropped all of it into Git would.
func TestCorpusAsOneRepo(t *testing.T) {
	corpusFiles(t, "valid")
	var out, errOut bytes.Buffer
	err := RunRender(context.Background(), RenderCommandOptions{Dir: filepath.Join(corpusDir, "valid"), Stdout: &out, Stderr: &errOut})
	// Several corpus files define the same pool names (infra, worker-rt…)
	// or a second MachineConfiguration: as one repo that is an error, and
	// it must be reported as such, naming files.
	if err == nil {
		if !strings.Contains(out.String(), "rendered-worker-") {
			t.Fatalf("no worker render:\n%s", out.String())
		}
		return
	}
	if !errors.Is(err, ErrInvalid) || !strings.Contains(errOut.String(), ".yaml: ") {
		t.Fatalf("err %v\n%s", err, errOut.String())
	}
}

// needsBase reports whether every error is a generator's missing base.
func needsBase(ps api.Problems) bool {
	errs := ps.Errors()
	for _, p := range errs {
		if !strings.Contains(p.Message, "has no base kubelet config") && !strings.Contains(p.Message, "has no /etc/containers/storage.conf") {
			return false
		}
	}
	return len(errs) > 0
}

// withBases is name beside the base MachineConfigs of the generated
// conformance cases (../shared/mco-conformance/generated/all-three-kinds).
func withBases(t *testing.T, name string, data []byte) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{name: {Data: data}}
	for _, b := range []string{"00-master-base.yaml", "00-worker-base.yaml"} {
		d, err := os.ReadFile(filepath.Join(genConformanceDir, "all-three-kinds", b))
		if err != nil {
			t.Fatal(err)
		}
		fsys[b] = &fstest.MapFile{Data: d}
	}
	return fsys
}
