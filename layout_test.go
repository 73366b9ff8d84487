package stoker_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "stoker.dev/stoker/"

// forbidden lists, per package, the imports it must not have (see each
// package's doc.go and docs/design.md "Packages"). Keys and entries are
// package paths: a path of ours is relative to the module ("reconciler"),
// anything else is a full import path ("net/http"). A trailing "/..."
// means the package and everything below it; without it only that exact
// package. Every rule whose key covers a package applies to it.
var forbidden = map[string][]string{
	"api/...":        {"reconciler/...", "gitsource/...", "agent/...", "nodeops/...", "cmd/...", "test/...", "demo/..."},
	"reconciler/...": {"agent/...", "nodeops/..."},
	// The pure steps: no Git, no HTTP, no other step.
	"reconciler/render":  {"gitsource/...", "github.com/go-git/...", "net/http/...", "reconciler/..."},
	"reconciler/rollout": {"gitsource/...", "github.com/go-git/...", "net/http/...", "reconciler/..."},
	// The generators the loader calls: pure too, and below render.
	"reconciler/generate": {"gitsource/...", "github.com/go-git/...", "net/http/...", "reconciler/..."},
	// The steps with I/O never import the hub loop that wires them.
	"reconciler/review":     {"reconciler", "net/http/..."},
	"reconciler/fleetview":  {"reconciler/..."},
	"reconciler/httpserver": {"reconciler/...", "gitsource/..."},
	// The config server reads the hub through a Snapshot callback.
	"reconciler/configserver": {"reconciler/...", "gitsource/...", "github.com/go-git/..."},
	"reconciler/notify":       {"reconciler/...", "gitsource/...", "github.com/go-git/..."}, // plain api types from the hub; no Git
	"gitsource/...":           {"reconciler/...", "agent/...", "nodeops/..."},
	"agent/...":               {"reconciler/..."},
	"nodeops/...":             {"gitsource/...", "reconciler/...", "agent/..."},
	"trust/...":               {"api/...", "reconciler/...", "gitsource/...", "agent/...", "nodeops/...", "cmd/...", "test/...", "demo/..."},
	"kubeclient/...":          {"api/...", "reconciler/...", "gitsource/...", "agent/...", "nodeops/...", "cmd/...", "test/...", "demo/...", "trust/..."},
	"observe/...":             {"api/...", "reconciler/...", "gitsource/...", "agent/...", "nodeops/...", "cmd/...", "test/...", "demo/...", "trust/..."},
	"test/testutil":           {"api/...", "reconciler/...", "gitsource/...", "agent/...", "nodeops/...", "cmd/...", "demo/..."},
}

// allowed lists, per package, imports a forbidden entry would otherwise
// refuse: the loader calls the generators.
var allowed = map[string][]string{
	"reconciler/render": {"reconciler/generate"},
}

// covers reports whether pattern (a forbidden key or entry) names path.
func covers(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

// ourPath turns an entry of ours ("reconciler/...") into an import path
// pattern; entries whose first element has a dot or that are standard
// library paths are kept as they are.
func ourPath(entry string) string {
	first := strings.Split(entry, "/")[0]
	if strings.Contains(first, ".") || stdlib[first] {
		return entry
	}
	return module + entry
}

// stdlib holds the first elements of the standard-library paths used in
// forbidden, so they are not taken for packages of ours.
var stdlib = map[string]bool{"net": true, "os": true}

// TestPackageDocsAndBoundaries fails when a package has no doc.go with a
// package comment, or when it imports a package its layer must not.
func TestPackageDocsAndBoundaries(t *testing.T) {
	pkgs := 0
	dirs := map[string]bool{}
	_ = filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "examples-repo" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	fset := token.NewFileSet()
	for dir := range dirs {
		if dir == "." {
			continue
		}
		pkgs++
		doc, err := parser.ParseFile(fset, filepath.Join(dir, "doc.go"), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: no doc.go: %v", dir, err)
		} else if doc.Doc == nil || len(strings.TrimSpace(doc.Doc.Text())) < 40 {
			t.Errorf("%s/doc.go: package comment missing or too short to say what it owns", dir)
		}
		rel := filepath.ToSlash(dir)
		var bad []string
		for key, never := range forbidden {
			if covers(key, rel) {
				bad = append(bad, never...)
			}
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ImportsOnly)
			if err != nil {
				t.Errorf("%s: %v", e.Name(), err)
				continue
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(p, module) && covers("api/...", rel) && !covers(module+"api/...", p) {
					t.Errorf("%s/%s imports %s: api imports no other package of ours", dir, e.Name(), p)
				}
				exempt := false
				for _, a := range allowed[rel] {
					exempt = exempt || covers(ourPath(a), p)
				}
				for _, b := range bad {
					if !exempt && covers(ourPath(b), p) {
						t.Errorf("%s/%s imports %s: %s must not import %s", dir, e.Name(), p, rel, b)
					}
				}
			}
		}
	}
	if pkgs < 6 {
		t.Fatalf("found only %d packages; the walk is broken", pkgs)
	}
}
