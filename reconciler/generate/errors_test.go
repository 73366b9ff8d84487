package generate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"stoker.dev/stoker/reconciler/render"
)

const buHead = "variant: openshift\nversion: 4.16.0\nmetadata:\n  name: 50-worker-x\n  labels:\n    machineconfiguration.openshift.io/role: worker\n"

func kc(name, body string) string {
	return "apiVersion: machineconfiguration.openshift.io/v1\nkind: KubeletConfig\nmetadata: {name: " + name + "}\nspec:\n  machineConfigPoolSelector:\n    matchLabels: {pools.operator.machineconfiguration.openshift.io/worker: \"\"}\n" + body
}

// TestRefusals: bad input is an error naming the file (and field), and
// nothing is generated from it.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"butane traversal", map[string]string{"bu/x.bu": buHead + "storage:\n  files:\n  - path: /etc/x\n    contents:\n      local: ../secret\n", "secret": "s"},
			[]string{"bu/x.bu: storage.files[0].contents.local: local path \"../secret\" leaves x.bu's directory: traversal refused"}},
		{"butane absolute local", map[string]string{"x.bu": buHead + "storage:\n  files:\n  - path: /etc/x\n    contents:\n      local: /etc/shadow\n"},
			[]string{"x.bu: storage.files[0].contents.local: local path \"/etc/shadow\" must be relative"}},
		{"butane missing local", map[string]string{"x.bu": buHead + "storage:\n  files:\n  - path: /etc/x\n    contents:\n      local: nope\n"},
			[]string{"x.bu: storage.files[0].contents.local: local path \"nope\""}},
		{"butane unsupported variant", map[string]string{"x.bu": "variant: flatcar\nversion: 1.0.0\n"},
			[]string{"x.bu: variant: \"flatcar\" is not supported"}},
		{"butane error names field", map[string]string{"x.bu": buHead + "storage:\n  files:\n  - path: etc/x\n"},
			[]string{"x.bu: storage.files[0].path"}},
		{"fcos name without role", map[string]string{"motd.bu": "variant: fcos\nversion: 1.5.0\n"},
			[]string{"motd.bu: an fcos Butane file is named <order>-<role>-<name>.bu"}},
		{"butane disks refused as on any MachineConfig", map[string]string{"x.bu": buHead + "storage:\n  disks:\n  - device: /dev/sdb\n    wipe_table: true\n"},
			[]string{"x.bu: spec.config.storage.disks"}},
		{"kubelet without base", map[string]string{"kc.yaml": kc("max", "  kubeletConfig: {maxPods: 10}\n")},
			[]string{"kc.yaml: pool worker has no base kubelet config at /etc/kubernetes/kubelet.conf for KubeletConfig max"}},
		{"kubelet forbidden fields", map[string]string{"kc.yaml": kc("bad", "  kubeletConfig: {staticPodPath: /x, memorySwap: {swapBehavior: LimitedSwap}}\n  autoSizingReserved: true\n")},
			[]string{"kc.yaml: spec.kubeletConfig.memorySwap.swapBehavior: KubeletConfiguration: swapBehavior is not allowed", "kc.yaml: spec.kubeletConfig.staticPodPath: KubeletConfiguration: staticPodPath is not allowed"}},
		{"kubelet bad path annotation", map[string]string{"kc.yaml": kc("max", "  kubeletConfig: {maxPods: 10}\n"),
			"pool.yaml": "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfigPool\nmetadata:\n  name: worker\n  annotations: {stoker.dev/kubelet-config-path: var/lib/kubelet/config.yaml}\nspec:\n  machineConfigSelector: {matchLabels: {machineconfiguration.openshift.io/role: worker}}\n"},
			[]string{"pool.yaml: metadata.annotations[stoker.dev/kubelet-config-path]: \"var/lib/kubelet/config.yaml\" must be an absolute, clean path"}},
		{"conflicting mirror policies", map[string]string{
			"a.yaml": "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata: {name: a}\nspec:\n  imageDigestMirrors: [{source: q.io/x, mirrors: [m.io/x], mirrorSourcePolicy: NeverContactSource}]\n",
			"b.yaml": "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata: {name: b}\nspec:\n  imageDigestMirrors: [{source: q.io/x, mirrors: [n.io/x]}]\n"},
			[]string{"b.yaml: spec.imageDigestMirrors[0].mirrorSourcePolicy: conflicting mirrorSourcePolicy is set for the same source \"q.io/x\""}},
		{"allowed and blocked", map[string]string{"i.yaml": "apiVersion: config.openshift.io/v1\nkind: Image\nmetadata: {name: cluster}\nspec:\n  registrySources: {allowedRegistries: [a.io], blockedRegistries: [b.io]}\n"},
			[]string{"i.yaml: spec.registrySources: invalid images config: only one of AllowedRegistries or BlockedRegistries may be specified"}},
		{"repo MachineConfig with a generated name", map[string]string{
			"i.yaml":  "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata: {name: a}\nspec:\n  imageDigestMirrors: [{source: q.io/x, mirrors: [m.io/x]}]\n",
			"mc.yaml": "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfig\nmetadata:\n  name: 99-worker-generated-registries\n  labels: {machineconfiguration.openshift.io/role: worker}\nspec: {}\n"},
			[]string{"mc.yaml: metadata.name: MachineConfig \"99-worker-generated-registries\" has the name Stoker generates from ImageDigestMirrorSet/a (i.yaml)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range tc.files {
				fsys[k] = &fstest.MapFile{Data: []byte(v)}
			}
			repo, ps := render.Load(fsys, ".", render.LoadOptions{})
			if ps.Err() == nil {
				_, ps = render.RenderAll(repo, render.RenderOptions{})
			}
			errs := ps.Errors()
			got := ""
			for _, p := range errs {
				got += p.String() + "\n"
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("no error containing %q; got:\n%s", w, got)
				}
			}
		})
	}
}

// TestButaneRefusesSymlinks: a local file reached through a symlink in
// the repo (a Git symlink) is refused naming it, whether the link is the
// file, a directory on the way, or inside a tree.
func TestButaneRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(outside, "shadow"), []byte("secret\n"), 0o600))
	must(os.MkdirAll(filepath.Join(dir, "files/tree"), 0o755))
	must(os.Symlink(filepath.Join(outside, "shadow"), filepath.Join(dir, "files/link")))
	must(os.Symlink(outside, filepath.Join(dir, "linkdir")))
	must(os.Symlink(filepath.Join(outside, "shadow"), filepath.Join(dir, "files/tree/evil")))
	for name, local := range map[string]string{
		"file":      "    contents:\n      local: files/link\n",
		"directory": "    contents:\n      local: linkdir/shadow\n",
	} {
		t.Run(name, func(t *testing.T) {
			must(os.WriteFile(filepath.Join(dir, "x.bu"), []byte(buHead+"storage:\n  files:\n  - path: /etc/x\n"+local), 0o644))
			_, ps := render.Load(os.DirFS(dir), ".", render.LoadOptions{})
			if err := ps.Err(); err == nil || !strings.Contains(err.Error(), "x.bu: storage.files[0].contents.local") || !strings.Contains(err.Error(), "is a symlink in the repo") {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("tree", func(t *testing.T) {
		must(os.WriteFile(filepath.Join(dir, "x.bu"), []byte(buHead+"storage:\n  trees:\n  - local: files/tree\n    path: /etc/t\n"), 0o644))
		_, ps := render.Load(os.DirFS(dir), ".", render.LoadOptions{})
		if err := ps.Err(); err == nil || !strings.Contains(err.Error(), "files/tree/evil is a symlink in the repo") {
			t.Fatalf("got %v", err)
		}
	})
}
