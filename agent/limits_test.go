package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"stoker.dev/stoker/api"
)

// TestOversizeRenderedRefusedBeforeParse: a rendered config over
// api.MaxRenderedBytes on the status branch is refused from its size,
// before it is read or JSON-parsed (the bytes here are not even JSON).
func TestOversizeRenderedRefusedBeforeParse(t *testing.T) {
	name := "rendered-worker-big"
	tree := fstest.MapFS{
		api.NodeFile("n"):      {Data: []byte("desiredConfig: " + name + "\n")},
		api.RenderedFile(name): {Data: []byte(strings.Repeat("x", api.MaxRenderedBytes+1))},
	}
	d := readDesired(tree, "n", api.DefaultCoreUser)
	if d.err == nil || !strings.Contains(d.err.Error(), "over the limit") || !strings.Contains(d.err.Error(), api.RenderedFile(name)) {
		t.Fatalf("readDesired err = %v, want a size refusal naming %s", d.err, api.RenderedFile(name))
	}
}

// TestDriftDiffReadsBounded: a content diff reads at most maxDiffBytes
// of a file a local user replaced, whatever its size.
func TestDriftDiffReadsBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	must(t, os.WriteFile(p, nil, 0o644))
	must(t, os.Truncate(p, 64<<20))
	data, err := readForDiff(p)
	if !errors.Is(err, errTooLargeForDiff) || len(data) > maxDiffBytes+1 {
		t.Fatalf("readForDiff of 64 MiB: %d bytes, %v", len(data), err)
	}
}
