package agent

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
)

// TestReadDesiredLayoutVersion: the agent reads a stoker/status without
// layout.yaml (written before the marker), one in version 1 and one in
// version 2, and refuses one in a newer layout with an error naming the
// branch and the version, before it reads anything else from it.
func TestReadDesiredLayoutVersion(t *testing.T) {
	tests := []struct {
		name   string
		marker string // "" = absent
		refuse bool
	}{
		{name: "absent is version 1"},
		{name: "version 1", marker: "version: 1\n"},
		{name: "version 2", marker: "version: 2\n"},
		{name: "version 3 refused", marker: "version: 3\n", refuse: true},
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
			if !errors.Is(d.err, api.ErrUnknownLayout) || !strings.Contains(d.err.Error(), "stoker/status is in layout version 3") {
				t.Fatalf("readDesired err = %v, want ErrUnknownLayout naming stoker/status and version 3", d.err)
			}
		})
	}
}

// TestReadDesiredLayout2: in layout 2 the agent finds its target in its
// pool's rollout — among the first Advanced nodes of the order it runs the
// target, after them its config before the rollout, an exception wins —
// and refuses a cursor that does not fit its order, naming the file.
func TestReadDesiredLayout2(t *testing.T) {
	order := api.PoolOrder{Pool: "worker", Target: c2.Name, From: c1.Name,
		Nodes: []api.OrderEntry{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}}
	cursor := api.PoolCursor{Pool: "worker", Target: c2.Name, Advanced: 2,
		Except: map[string]string{"b": c1.Name, "d": c2.Name, "e": c2.Name, "c": ""}}
	tree := func(o api.PoolOrder, c api.PoolCursor) fstest.MapFS {
		files := fstest.MapFS{api.LayoutFile: {Data: api.LayoutMarker(2)}}
		for name, v := range map[string]any{api.RolloutOrderFile("worker"): o, api.RolloutCursorFile("worker"): c,
			api.PoolFile("worker"): api.PoolTarget{Name: "worker", Rendered: c2.Name}} {
			data, err := yaml.Marshal(v)
			must(t, err)
			files[name] = &fstest.MapFile{Data: data}
		}
		for _, r := range []*api.Rendered{c1, c2} {
			data, err := r.Encode()
			must(t, err)
			files[api.RenderedFile(r.Name)] = &fstest.MapFile{Data: data}
		}
		return files
	}
	for node, want := range map[string]string{"a": c2.Name, "b": c1.Name, "c": "", "d": c2.Name, "e": c2.Name, "f": ""} {
		d := readDesired(tree(order, cursor), node, api.DefaultCoreUser)
		if d.err != nil {
			t.Fatalf("node %s: readDesired: %v", node, d.err)
		}
		if d.name() != want || (want != "" && (d.target.Pool != "worker" || d.rendered == nil || d.rendered.Name != want)) {
			t.Fatalf("node %s: desired %q (pool %q), want %q in pool worker", node, d.name(), d.target.Pool, want)
		}
	}
	bad := cursor
	bad.Advanced = 5
	d := readDesired(tree(order, bad), "a", api.DefaultCoreUser)
	if d.err == nil || !strings.Contains(d.err.Error(), "rollouts/worker/cursor.yaml: advanced: 5, want 0 to 4") {
		t.Fatalf("cursor past its order: err = %v, want it refused naming the file and field", d.err)
	}
}
