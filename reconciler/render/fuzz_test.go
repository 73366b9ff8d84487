package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"stoker.dev/stoker/api"
)

// FuzzLoadRender feeds arbitrary bytes through load and render: it must
// never panic, a repo with errors must render nothing, and whatever renders
// must pass the agent's own validation and encode/parse round trip.
func FuzzLoadRender(f *testing.F) {
	for _, sub := range []string{"valid", "invalid"} {
		ents, _ := os.ReadDir(filepath.Join(corpusDir, sub))
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join(corpusDir, sub, e.Name())); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(filesMC("50-a", "worker", file("/etc/a", "x", "        mode: 0644\n"))))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- " + pool("infra", workerInfraSel)))
	f.Fuzz(func(t *testing.T, data []byte) {
		repo, ps := Load(fstest.MapFS{"f.yaml": {Data: data}}, ".", LoadOptions{})
		for _, p := range ps {
			if p.File != "f.yaml" {
				t.Fatalf("problem without its file: %s", p)
			}
		}
		if len(ps.Errors()) > 0 {
			return
		}
		res, rps := RenderAll(repo, RenderOptions{})
		if len(rps.Errors()) > 0 {
			if res != nil {
				t.Fatal("a failed render returned a result")
			}
			return
		}
		for _, pr := range res.Pools {
			if vps := api.ValidateRendered(pr.Rendered, api.DefaultValidationOptions()); len(vps) > 0 {
				t.Fatalf("render of %s fails the agent's validation: %v", pr.Pool.Object.Name, vps)
			}
			enc, err := pr.Rendered.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := api.ParseRendered(enc)
			if err != nil || back.Name != pr.Rendered.Name {
				t.Fatalf("round trip: %v", err)
			}
			if n, _ := Name(pr.Pool.Object.Name, back); n != pr.Rendered.Name && !strings.Contains(string(enc), "\\u") {
				// A parsed config names the same as the original.
				t.Fatalf("name after round trip %s, want %s", n, pr.Rendered.Name)
			}
		}
	})
}
