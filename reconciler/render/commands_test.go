package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestValidateReportsEveryMistake: three different mistakes in three files
// are all reported, one per line, with file and field, and the run fails.
func TestValidateReportsEveryMistake(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"machineconfigs/50-path.yaml": filesMC("50-path", "worker", file("/etc/a", "x", ""), file("/etc/b", "x", ""), file("/usr/bin/evil", "x", "")),
		"machineconfigs/60-mode.yaml": filesMC("60-mode", "worker", file("/etc/c", "x", "        mode: 01000\n")),
		"pools/etcd.yaml":             pool("etcd", "  machineConfigSelector:\n    matchLabels: {machineconfiguration.openshift.io/role: etcd}\n"),
		".github/workflows/ci.yaml":   "on: [push",
	})
	var out bytes.Buffer
	err := RunValidate(context.Background(), ValidateOptions{Dir: dir, Stdout: &out})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	want := []string{
		"machineconfigs/50-path.yaml: spec.config.storage.files[2].path: path \"/usr/bin/evil\" must be under",
		"machineconfigs/60-mode.yaml: spec.config.storage.files[0].mode: invalid mode 01000",
		"pools/etcd.yaml: spec.machineConfigSelector: custom pool \"etcd\"",
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("missing %q in:\n%s", w, out.String())
		}
	}
}

func TestValidateCleanAndStrict(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a.yaml": filesMC("50-a", "worker", file("/etc/a", "x", "")),
		"k.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
	})
	var out bytes.Buffer
	if err := RunValidate(context.Background(), ValidateOptions{Dir: dir, Stdout: &out}); err != nil {
		t.Fatalf("clean repo: %v\n%s", err, out.String())
	}
	if last := lastLine(out.String()); !strings.Contains(last, "ok: 1 MachineConfig(s), 2 pool(s) rendered, 1 warning(s)") {
		t.Fatalf("summary %q", last)
	}
	out.Reset()
	if err := RunValidate(context.Background(), ValidateOptions{Dir: dir, Strict: true, Stdout: &out}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("strict: err = %v\n%s", err, out.String())
	}
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}

func TestRenderCommand(t *testing.T) {
	var out bytes.Buffer
	err := RunRender(context.Background(), RenderCommandOptions{Dir: "../../examples-repo", Output: "json", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Pools []struct {
			Name           string   `json:"name"`
			Rendered       string   `json:"rendered"`
			MachineConfigs []string `json:"machineConfigs"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Pools) != 4 || got.Pools[0].Name != "infra" || !strings.HasPrefix(got.Pools[0].Rendered, "rendered-infra-") || len(got.Pools[0].MachineConfigs) == 0 {
		t.Fatalf("got %+v", got)
	}
	// Twice: the same bytes.
	o1, o2 := t.TempDir(), t.TempDir()
	for _, o := range []string{o1, o2} {
		if err := RunRender(context.Background(), RenderCommandOptions{Dir: "../../examples-repo", Out: o, Stdout: &bytes.Buffer{}}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := tree(t, o1), tree(t, o2)
	if len(a) != 8 {
		t.Fatalf("wrote %v", keys(a))
	}
	for k := range a {
		if a[k] != b[k] {
			t.Errorf("%s differs between runs", k)
		}
	}
	if err := RunRender(context.Background(), RenderCommandOptions{Dir: "../../examples-repo", Output: "yaml", Stdout: &out}); err == nil {
		t.Fatal("unknown output format accepted")
	}
}

// TestRenderListsGenerated: stoker render names every generated and
// Butane-made MachineConfig with its source, in the table and in -o json.
func TestRenderListsGenerated(t *testing.T) {
	var out bytes.Buffer
	if err := RunRender(context.Background(), RenderCommandOptions{Dir: "../../examples-repo", Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"GENERATED", "00-worker-kubelet               Butane file butane/00-worker-kubelet.bu",
		"99-worker-generated-kubelet     KubeletConfig/worker-max-pods (kubelet/kubeletconfig.yaml)",
		"99-worker-generated-registries  ImageDigestMirrorSet/team-images (images/mirror-set.yaml)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("render output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := RunRender(context.Background(), RenderCommandOptions{Dir: "../../examples-repo", Stdout: &out, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var got renderJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Generated) != 4 || got.Generated[2] != (GeneratedSource{Name: "99-worker-generated-kubelet", From: "KubeletConfig/worker-max-pods (kubelet/kubeletconfig.yaml)"}) {
		t.Fatalf("generated: %+v", got.Generated)
	}
}
