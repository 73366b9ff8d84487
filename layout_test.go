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

// forbidden lists, per top-level package, the packages of ours it must not
// import (see each package's doc.go and DESIGN.md "Code layout").
var forbidden = map[string][]string{
	"api":        {"reconciler", "gitsource", "agent", "nodeops", "cmd", "test"},
	"reconciler": {"agent", "nodeops"},
	"gitsource":  {"reconciler", "agent", "nodeops"},
	"agent":      {"reconciler"},
	"nodeops":    {"gitsource", "reconciler", "agent"},
	"trust":      {"api", "reconciler", "gitsource", "agent", "nodeops", "cmd", "test", "demo"},
}

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
		top := strings.Split(filepath.ToSlash(dir), "/")[0]
		bad := forbidden[top]
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
				if !strings.HasPrefix(p, module) {
					continue
				}
				target := strings.Split(strings.TrimPrefix(p, module), "/")[0]
				if top == "api" && target != "api" {
					t.Errorf("%s/%s imports %s: api imports no other package of ours", dir, e.Name(), p)
				}
				for _, b := range bad {
					if target == b {
						t.Errorf("%s/%s imports %s: %s must not import %s", dir, e.Name(), p, top, b)
					}
				}
			}
		}
	}
	if pkgs < 6 {
		t.Fatalf("found only %d packages; the walk is broken", pkgs)
	}
}
