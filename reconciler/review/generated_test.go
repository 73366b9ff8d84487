package review

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiffNamesGeneratedSources: a change to a mirror set shows in
// stoker diff as a registries.conf change of each built-in pool, naming
// that pool's generated MachineConfig and the object it came from, with
// MCO's crio reload; a Butane file's plain local file diffs line by line
// and names the Butane file.
func TestDiffNamesGeneratedSources(t *testing.T) {
	idms := func(mirrors string) string {
		return "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata: {name: team}\nspec:\n  imageDigestMirrors:\n  - source: quay.io/team\n    mirrors: [" + mirrors + "]\n"
	}
	bu := "variant: openshift\nversion: 4.16.0\nmetadata:\n  name: 50-worker-motd\n  labels: {machineconfiguration.openshift.io/role: worker}\nstorage:\n  files:\n  - path: /etc/motd\n    contents: {local: motd}\n"
	write := func(dir string, files map[string]string) {
		for p, c := range files {
			if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base, head := t.TempDir(), t.TempDir()
	write(base, map[string]string{"idms.yaml": idms("m1.example.net/team"), "motd.bu": bu, "motd": "line 1\nline 2\n"})
	write(head, map[string]string{"idms.yaml": idms("m1.example.net/team, m2.example.net/team"), "motd.bu": bu, "motd": "line 1\nline two\n"})
	var out bytes.Buffer
	if err := RunDiff(context.Background(), DiffOptions{Base: base, Head: head, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"pool master:", "from generated MachineConfig 99-master-generated-registries ← ImageDigestMirrorSet/team (idms.yaml)",
		"pool worker:", "from generated MachineConfig 99-worker-generated-registries ← ImageDigestMirrorSet/team (idms.yaml)",
		"file /etc/containers/registries.conf changed: Reload crio.service",
		"+    location = \"m2.example.net/team\"",
		"from MachineConfig 50-worker-motd ← Butane file motd.bu",
		"-line 2", "+line two",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "99-worker-generated-registries") != 1 {
		t.Errorf("worker's generated MachineConfig named outside the worker pool:\n%s", got)
	}
}
