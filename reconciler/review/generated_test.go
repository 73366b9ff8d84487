package review

import (
	"bytes"
	"context"
	"os"
	"os/exec"
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

// TestDiffGitButane: between two commits, a Butane file's plain local
// file is read from the Git tree and diffs line by line; a local file
// that is a Git symlink is refused, naming the Butane file.
func TestDiffGitButane(t *testing.T) {
	bu := "variant: openshift\nversion: 4.16.0\nmetadata:\n  name: 50-worker-motd\n  labels: {machineconfiguration.openshift.io/role: worker}\nstorage:\n  files:\n  - path: /etc/motd\n    contents: {local: files/motd}\n"
	dir := gitRepo(t, map[string]string{"butane/motd.bu": bu, "butane/files/motd": "hello\nold line\n"},
		map[string]string{"butane/files/motd": "hello\nnew line\n"})
	var out bytes.Buffer
	if err := RunDiff(context.Background(), DiffOptions{Base: "base", Head: "head", Dir: dir, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"file /etc/motd changed", "-old line", "+new line", "from MachineConfig 50-worker-motd ← Butane file butane/motd.bu"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("diff lacks %q:\n%s", want, out.String())
		}
	}

	dir = gitRepo(t, map[string]string{"butane/motd.bu": bu, "butane/files/real": "x\n"}, nil)
	if err := os.Remove(filepath.Join(dir, "butane/files/real")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/shadow", filepath.Join(dir, "butane/files/motd")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "link"}, {"tag", "-f", "head"}} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "HOME="+dir)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
	}
	out.Reset()
	err := RunDiff(context.Background(), DiffOptions{Base: "base", Head: "head", Dir: dir, Stdout: &out})
	if err == nil || !strings.Contains(out.String(), "butane/motd.bu: storage.files[0].contents.local") || !strings.Contains(out.String(), "is a symlink in the repo") {
		t.Fatalf("symlink not refused (%v):\n%s", err, out.String())
	}
}
