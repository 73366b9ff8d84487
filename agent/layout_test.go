package agent

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"stoker.dev/stoker/api"
)

// TestReadDesiredLayoutVersion: the agent reads a stoker/status without
// layout.yaml (written before the marker) and one in version 1, and
// refuses one in a newer layout with an error naming the branch and the
// version, before it reads anything else from it.
func TestReadDesiredLayoutVersion(t *testing.T) {
	tests := []struct {
		name   string
		marker string // "" = absent
		refuse bool
	}{
		{name: "absent is version 1"},
		{name: "version 1", marker: "version: 1\n"},
		{name: "version 2 refused", marker: "version: 2\n", refuse: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := fstest.MapFS{api.PoolFile("worker"): {Data: []byte("rendered: rendered-worker-1\n")}}
			if tc.marker != "" {
				tree[api.LayoutFile] = &fstest.MapFile{Data: []byte(tc.marker)}
			}
			d := readDesired(tree, "n", api.DefaultCoreUser)
			if !tc.refuse {
				if d.err != nil || !d.none {
					t.Fatalf("readDesired = none %v, err %v; want no target and no error", d.none, d.err)
				}
				return
			}
			if !errors.Is(d.err, api.ErrUnknownLayout) || !strings.Contains(d.err.Error(), "stoker/status is in layout version 2") {
				t.Fatalf("readDesired err = %v, want ErrUnknownLayout naming stoker/status and version 2", d.err)
			}
		})
	}
}
