package render

import (
	"fmt"
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

// benchRepo builds 1,000 MachineConfigs across 10 pools (the two built-in
// ones and eight custom pools), each MC with two files and a unit.
func benchRepo(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	roles := []string{"master", "worker"}
	for i := 0; i < 8; i++ {
		r := fmt.Sprintf("custom%d", i)
		roles = append(roles, r)
		write("pools/"+r+".yaml", pool(r, strings.ReplaceAll(workerInfraSel, "infra", r)))
	}
	for i := 0; i < 1000; i++ {
		role := roles[i%len(roles)]
		name := fmt.Sprintf("%03d-%s", i, role)
		write("machineconfigs/"+name+".yaml", mc(name, role, fmt.Sprintf(
			"  kernelArguments: [k%d=1]\n  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n"+
				"      - {path: /etc/stoker/%d.conf, mode: 0644, contents: {source: 'data:,value%%20%d'}}\n"+
				"      - {path: /etc/shared.conf, contents: {source: 'data:,from%%20%d'}}\n"+
				"    systemd:\n      units:\n      - name: s%d.service\n        enabled: true\n        contents: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n\"\n",
			i, i, i, i, i)))
	}
	return dir
}

// BenchmarkLoadOnly parses the 1,000-MC repo (YAML, Ignition, validation).
func BenchmarkLoadOnly(b *testing.B) {
	dir := benchRepo(b)
	fsys := os.DirFS(dir)
	b.ResetTimer()
	for b.Loop() {
		if _, ps := Load(fsys, ".", LoadOptions{}); ps.Err() != nil {
			b.Fatal(ps.Err())
		}
	}
}

// BenchmarkRender loads and renders all 10 pools of the same repo.
func BenchmarkRender(b *testing.B) {
	dir := benchRepo(b)
	fsys := os.DirFS(dir)
	b.ResetTimer()
	for b.Loop() {
		repo, ps := Load(fsys, ".", LoadOptions{})
		if ps.Err() != nil {
			b.Fatal(ps.Err())
		}
		res, ps := RenderAll(repo, RenderOptions{})
		if ps.Err() != nil || len(res.Pools) != 10 {
			b.Fatal(ps.Err())
		}
	}
}

// BenchmarkRenderOnly renders an already loaded repo: the cost of merging.
func BenchmarkRenderOnly(b *testing.B) {
	repo, ps := Load(os.DirFS(benchRepo(b)), ".", LoadOptions{})
	if ps.Err() != nil {
		b.Fatal(ps.Err())
	}
	b.ResetTimer()
	for b.Loop() {
		if _, ps := RenderAll(repo, RenderOptions{}); ps.Err() != nil {
			b.Fatal(ps.Err())
		}
	}
}
