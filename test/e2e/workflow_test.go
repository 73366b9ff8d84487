//go:build e2e

package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/test/gitserver"
)

// TestWorkflowPullRequestToCanary runs the shipped pull-request workflow's
// "Render the diff" step, as GitHub Actions would, on a checkout of a PR
// to canary: the sticky comment names the canary pool only, since worker
// and infra render main (their source branch), which the PR does not touch.
func TestWorkflowPullRequestToCanary(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../examples-repo/.github/workflows/stoker-diff.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Name string            `json:"name"`
				Env  map[string]string `json:"env"`
				Run  string            `json:"run"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}
	script := ""
	for _, s := range wf.Jobs["diff"].Steps {
		if s.Name == "Render the diff" {
			script = s.Run
		}
	}
	if script == "" {
		t.Fatal(`no "Render the diff" step in the workflow`)
	}

	// origin: main and canary (canary branched from main, as the README
	// walkthrough has it); the PR branches from canary and changes a file
	// every worker pool gets.
	tmp := t.TempDir()
	origin := filepath.Join(tmp, "origin")
	git := func(dir string, args ...string) {
		t.Helper()
		if _, err := gitserver.Git(dir, nil, args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(origin, 0o755); err != nil {
		t.Fatal(err)
	}
	git(origin, "init", "-q", "-b", "main")
	// The repository as it is on disk (what a fork starts from).
	src := os.DirFS("../../examples-repo")
	if err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(origin, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	git(origin, "add", "-A")
	git(origin, "commit", "-q", "-m", "import examples-repo")
	git(origin, "branch", "canary")
	work := filepath.Join(tmp, "work")
	git(tmp, "clone", "-q", origin, work)
	git(work, "checkout", "-q", "-b", "pr", "origin/canary")
	sysctl := filepath.Join(work, "machineconfigs", "50-worker-sysctl.yaml")
	b, err := os.ReadFile(sysctl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sysctl, []byte(strings.Replace(string(b), "1024", "4096", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	git(work, "commit", "-q", "-am", "canary: somaxconn 4096")

	// "$(go env GOPATH)/bin/stoker" is the binary under test.
	gopath := filepath.Join(tmp, "gopath")
	if err := os.MkdirAll(filepath.Join(gopath, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(stokerBin, filepath.Join(gopath, "bin", "stoker")); err != nil {
		t.Fatal(err)
	}
	output := filepath.Join(tmp, "github-output")
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOPATH="+gopath, "GITHUB_OUTPUT="+output, "BASE_REF=canary", "DEFAULT_BRANCH=main", "STATUS_REPO=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step: %v\n%s", err, out)
	}
	md, err := os.ReadFile(filepath.Join(work, "stoker-diff.md"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.ReadFile(output)
	comment := string(md)
	if !strings.Contains(string(st), "status=0") || !strings.Contains(comment, "| worker-canary | **Restart** |") ||
		strings.Contains(comment, "| worker |") || strings.Contains(comment, "| infra |") {
		t.Fatalf("a PR to canary must show worker-canary only (%s):\n%s", st, comment)
	}
}
