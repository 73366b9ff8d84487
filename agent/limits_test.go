package agent

import (
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
