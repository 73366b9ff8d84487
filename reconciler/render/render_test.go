package render

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"stoker.dev/stoker/api"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func file(path, data, extra string) string {
	return "      - path: " + path + "\n        contents: {source: 'data:," + data + "'}\n" + extra
}

func filesMC(name, role string, files ...string) string {
	return mc(name, role, "  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n"+strings.Join(files, ""))
}

func renderFiles(t *testing.T, files map[string]string) (*RenderResult, api.Problems) {
	t.Helper()
	repo, ps := load(t, files, LoadOptions{})
	if len(ps.Errors()) > 0 {
		return nil, ps
	}
	return RenderAll(repo, RenderOptions{})
}

func poolOf(t *testing.T, res *RenderResult, name string) *PoolRender {
	t.Helper()
	for i := range res.Pools {
		if res.Pools[i].Pool.Object.Name == name {
			return &res.Pools[i]
		}
	}
	t.Fatalf("no pool %s", name)
	return nil
}

func TestMergeRules(t *testing.T) {
	infra := pool("infra", workerInfraSel)
	cases := []struct {
		name  string
		files map[string]string
		pool  string
		check func(t *testing.T, pr *PoolRender)
	}{
		{name: "files keyed by path, merged field by field, overwrite defaulted",
			files: map[string]string{
				"a.yaml": filesMC("10-a", "worker", file("/etc/a", "one", "        mode: 0600\n"), file("/etc/keep", "k", "        overwrite: false\n")),
				"b.yaml": filesMC("20-b", "worker", file("/etc/a", "two", "")),
			},
			pool: "worker",
			check: func(t *testing.T, pr *PoolRender) {
				fs := pr.Rendered.Config.Storage.Files
				if len(fs) != 2 || fs[0].Path != "/etc/a" || *fs[0].Contents.Source != "data:,two" || *fs[0].Mode != 0o600 || !*fs[0].Overwrite || *fs[1].Overwrite {
					t.Fatalf("files: %+v", fs)
				}
			}},
		{name: "worker MCs first, then the pool's own, whatever the names",
			files: map[string]string{
				"i.yaml": filesMC("00-infra", "infra", file("/etc/a", "infra", "")),
				"w.yaml": filesMC("99-worker", "worker", file("/etc/a", "worker", "")),
				"p.yaml": infra,
			},
			pool: "infra",
			check: func(t *testing.T, pr *PoolRender) {
				if got := strings.Join(pr.MachineConfigs, ","); got != "99-worker,00-infra" {
					t.Fatalf("order %s", got)
				}
				if s := *pr.Rendered.Config.Storage.Files[0].Contents.Source; s != "data:,infra" {
					t.Fatalf("source %s", s)
				}
			}},
		{name: "units and dropins by name",
			files: map[string]string{
				"a.yaml": mc("10-a", "worker", "  config:\n    ignition: {version: 3.2.0}\n    systemd:\n      units:\n      - name: a.service\n        contents: \"[Service]\\nExecStart=/bin/a\\n\"\n        dropins: [{name: 10-x.conf, contents: \"[Service]\\nA=1\\n\"}]\n"),
				"b.yaml": mc("20-b", "worker", "  config:\n    ignition: {version: 3.2.0}\n    systemd:\n      units:\n      - name: a.service\n        enabled: true\n        dropins: [{name: 10-x.conf, contents: \"[Service]\\nA=2\\n\"}, {name: 20-y.conf, contents: \"[Service]\\nB=1\\n\"}]\n      - {name: b.service, mask: true}\n"),
			},
			pool: "worker",
			check: func(t *testing.T, pr *PoolRender) {
				us := pr.Rendered.Config.Systemd.Units
				if len(us) != 2 || us[0].Contents == nil || !*us[0].Enabled || len(us[0].Dropins) != 2 || *us[0].Dropins[0].Contents != "[Service]\nA=2\n" || !*us[1].Mask {
					t.Fatalf("units: %+v", us)
				}
			}},
		{name: "users by name, ssh keys unioned in order",
			files: map[string]string{
				"a.yaml": mc("10-a", "worker", "  config:\n    ignition: {version: 2.2.0}\n    passwd:\n      users:\n      - {name: core, sshAuthorizedKeys: [key-a, key-b]}\n"),
				"b.yaml": mc("20-b", "worker", "  config:\n    ignition: {version: 3.2.0}\n    passwd:\n      users:\n      - {name: core, sshAuthorizedKeys: [key-b, key-c], passwordHash: x}\n"),
			},
			pool: "worker",
			check: func(t *testing.T, pr *PoolRender) {
				u := pr.Rendered.Config.Passwd.Users
				if len(u) != 1 || fmt.Sprint(u[0].SSHAuthorizedKeys) != "[key-a key-b key-c]" || *u[0].PasswordHash != "x" {
					t.Fatalf("users: %+v", u)
				}
			}},
		// MergeMachineConfigs: kernel argument entries are kept as written.
		{name: "fips any, kernelType last non-default, kargs and extensions concatenated, osImageURL last non-empty",
			files: map[string]string{
				"a.yaml": mc("10-a", "worker", "  fips: true\n  kernelType: realtime\n  kernelArguments: [a=1, 'b=2  c=\"x y\"']\n  extensions: [usbguard]\n  osImageURL: img-a\n"),
				"b.yaml": mc("20-b", "worker", "  kernelType: default\n  kernelArguments: [a=1]\n  extensions: [usbguard, kerberos]\n"),
				"c.yaml": mc("30-c", "worker", "  fips: false\n  kernelType: ''\n  osImageURL: ''\n"),
			},
			pool: "worker",
			check: func(t *testing.T, pr *PoolRender) {
				r := pr.Rendered
				if !r.FIPS || r.KernelType != "realtime" || r.OSImageURL != "img-a" ||
					fmt.Sprint(r.KernelArguments) != `[a=1 b=2  c="x y" a=1]` || fmt.Sprint(r.Extensions) != "[usbguard usbguard kerberos]" {
					t.Fatalf("rendered: %+v", r)
				}
			}},
		{name: "no MCs: default kernel, empty config, still named",
			files: map[string]string{},
			pool:  "master",
			check: func(t *testing.T, pr *PoolRender) {
				r := pr.Rendered
				if r.KernelType != "default" || r.Config.Ignition.Version != "3.5.0" || !strings.HasPrefix(r.Name, "rendered-master-") || len(r.Name) != len("rendered-master-")+32 {
					t.Fatalf("rendered: %+v", r)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, ps := renderFiles(t, tc.files)
			if len(ps.Errors()) > 0 {
				t.Fatalf("problems:\n%s", lines(ps))
			}
			tc.check(t, poolOf(t, res, tc.pool))
		})
	}
}

func TestRenderRejects(t *testing.T) {
	// A file with no source passes alone only without overwrite; MCO's
	// default overwrite: true makes the render fail, and the problem names
	// the MC that brought the file.
	_, ps := renderFiles(t, map[string]string{
		"ok.yaml": filesMC("10-a", "worker", file("/etc/a", "x", "")),
		"big.yaml": mc("20-big", "worker", "  config:\n    ignition: {version: 3.2.0}\n    storage:\n      files:\n"+
			file("/etc/big1", strings.Repeat("a", 900*1024), "")+file("/etc/big2", strings.Repeat("b", 900*1024), "")),
	})
	// The oversized config names what made it big, with sizes.
	if len(ps.Errors()) != 1 || !strings.Contains(ps[0].String(), "over the limit") || ps[0].File != "big.yaml" ||
		!strings.Contains(ps[0].Message, "largest MachineConfigs in it: 20-big (big.yaml) 18") || !strings.Contains(ps[0].Message, "10-a (ok.yaml)") {
		t.Fatalf("got:\n%s", lines(ps))
	}
}

func TestRenderDeterministic(t *testing.T) {
	a := map[string]string{
		"x/one.yaml": filesMC("10-a", "worker", file("/etc/a", "1", "")) + "\n---\n" + mc("20-b", "worker", "  kernelArguments: [k=1]\n"),
		"pools.yaml": pool("infra", workerInfraSel),
	}
	b := map[string]string{
		"z.yaml":      mc("20-b", "worker", "  kernelArguments: [k=1]\n"),
		"a/b/c.yml":   filesMC("10-a", "worker", file("/etc/a", "1", "")),
		"q/infra.yml": pool("infra", workerInfraSel),
	}
	ra, pa := renderFiles(t, a)
	rb, pb := renderFiles(t, b)
	if len(pa)+len(pb) > 0 {
		t.Fatalf("problems: %v %v", pa, pb)
	}
	fa, _ := ra.StatusFiles("main", "abc")
	fb, _ := rb.StatusFiles("main", "abc")
	if len(fa) != 6 || len(fa) != len(fb) {
		t.Fatalf("files: %d vs %d", len(fa), len(fb))
	}
	for k, v := range fa {
		if !bytes.Equal(v, fb[k]) {
			t.Errorf("%s differs with another layout:\n%s\n---\n%s", k, v, fb[k])
		}
	}
	// A change anywhere changes the name.
	a["pools.yaml"] += "\n---\n" + mc("30-c", "worker", "  fips: true\n")
	rc, _ := renderFiles(t, a)
	if poolOf(t, rc, "worker").Rendered.Name == poolOf(t, ra, "worker").Rendered.Name {
		t.Error("adding an MC kept the rendered name")
	}
}

func TestRenderPoolFromOtherBranch(t *testing.T) {
	main, _ := load(t, map[string]string{
		"p.yaml": "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigPool\nmetadata:\n  name: canary\n  annotations: {stoker.dev/source-branch: canary}\nspec:\n" + strings.ReplaceAll(workerInfraSel, "infra", "canary"),
		"a.yaml": filesMC("10-a", "worker", file("/etc/a", "main", "")),
	}, LoadOptions{})
	canary, ps := load(t, map[string]string{"a.yaml": filesMC("10-a", "worker", file("/etc/a", "canary", ""))}, LoadOptions{})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	pr, ps := RenderPool(*main.Pool("canary"), canary.MachineConfigs, RenderOptions{})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if s := *pr.Rendered.Config.Storage.Files[0].Contents.Source; s != "data:,canary" {
		t.Fatalf("rendered from the wrong branch: %s", s)
	}
	target := pr.Target(main.DisruptionPolicy(), "canary", "c0ffee")
	files, err := PoolFiles(target, pr.Rendered)
	if err != nil {
		t.Fatal(err)
	}
	if y := string(files["pools/canary.yaml"]); !strings.Contains(y, "sourceBranch: canary") || !strings.Contains(y, "sourceCommit: c0ffee") {
		t.Fatalf("pool file:\n%s", y)
	}
	back, err := api.ParseRendered(files[api.RenderedFile(pr.Rendered.Name)])
	if err != nil || back.Name != pr.Rendered.Name {
		t.Fatalf("rendered file does not parse back: %v", err)
	}
	if ps := api.ValidateRendered(back, api.DefaultValidationOptions()); len(ps) > 0 {
		t.Fatalf("rendered file fails the agent's validation: %v", ps)
	}
}

// TestGoldenExamplesRepo renders examples-repo and compares every file
// --out writes with testdata/golden/examples-repo (go test -update rewrites).
func TestGoldenExamplesRepo(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := RunRender(context.Background(), RenderCommandOptions{Dir: "../../examples-repo", Out: out, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("render: %v\n%s", err, stderr.String())
	}
	if err := os.WriteFile(filepath.Join(out, "table.txt"), stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden", "examples-repo")
	if *update {
		os.RemoveAll(golden)
		if err := os.CopyFS(golden, os.DirFS(out)); err != nil {
			t.Fatal(err)
		}
	}
	got, want := tree(t, out), tree(t, golden)
	if len(got) != len(want) {
		t.Errorf("files: got %v, want %v (run go test -update after checking the change)", keys(got), keys(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s differs from golden (go test -update to accept):\n--- got\n%s", k, got[k])
		}
	}
}

func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		r, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(r)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestRenderOptionsUseLoadSizes: RenderPool given repo.RenderOptions reads
// each file's decoded size from what Load measured instead of decoding
// the data URL again (the hub renders every pool at each config change).
// The test makes the cache claim the one file is over the node's limit on
// a rendered config's decoded contents: only a render that consults the
// cache refuses the pool.
func TestRenderOptionsUseLoadSizes(t *testing.T) {
	repo, ps := load(t, map[string]string{"a.yaml": filesMC("10-a", "worker", file("/etc/a", "small", ""))}, LoadOptions{})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	worker := *repo.Pool("worker")
	if _, ps := RenderPool(worker, repo.MachineConfigs, RenderOptions{}); len(ps) > 0 {
		t.Fatalf("without the cache: %v", ps)
	}
	src := repo.MachineConfigs[0].Object.Ignition.Storage.Files[0].Contents.Source
	if _, ok := repo.sizes[src]; !ok || len(repo.sizes) != 1 {
		t.Fatalf("Load cached %d sizes, not the one of /etc/a", len(repo.sizes))
	}
	limit := int64(api.DefaultMaxConfigBytes)
	repo.sizes[src] = (limit + 1) << 2 // uncompressed: code 0
	_, ps = RenderPool(worker, repo.MachineConfigs, repo.RenderOptions(RenderOptions{}))
	if len(ps.Errors()) == 0 {
		t.Fatal("render with the repo's cache did not use it")
	}
	t.Logf("refused as the cache says: %v", ps.Errors()[0])
	own := api.DefaultValidationOptions()
	own.Sizes = api.SizeCache{}
	if got := repo.RenderOptions(RenderOptions{Validation: &own}); got.Validation.Sizes == nil || len(got.Validation.Sizes) != 0 {
		t.Fatal("RenderOptions replaced the caller's own cache")
	}
}
