package render

import "testing"

// TestStreamNameMatchesName holds the name RenderPool streams the config
// into (streamName) to Name, which hashes json.Marshal's encoding.
func TestStreamNameMatchesName(t *testing.T) {
	fsys, _ := realisticRepo()
	repo, _ := Load(fsys, ".", LoadOptions{})
	res, _ := RenderAll(repo, RenderOptions{})
	for _, p := range res.Pools {
		want, _ := Name(p.Pool.Object.Name, p.Rendered)
		if want != p.Rendered.Name {
			t.Fatal(want, p.Rendered.Name)
		}
	}
	if len(res.Pools) != 10 {
		t.Fatalf("%d pools rendered", len(res.Pools))
	}
}
