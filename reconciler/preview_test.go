package reconciler

import (
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
)

func TestHubPreviews(t *testing.T) {
	base := map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"mc/10-a.yaml":      fileMC("10-a", "worker", "/etc/a", "one"),
	}
	e := newFleetEnv(t, base)
	repo := e.open(t.TempDir())
	e.hub = NewHub(HubConfig{Config: repo, Status: repo, Reports: repo, Previews: []string{"feature/*"},
		Now: func() time.Time { return e.now }})
	e.push("feature/x", map[string]string{"mc/10-a.yaml": fileMC("10-a", "worker", "/etc/a", "two")})
	e.push("other", map[string]string{"mc/10-a.yaml": fileMC("10-a", "worker", "/etc/a", "three")})
	e.reconcile()

	status := e.readBranch(api.StatusBranch)
	preview := e.readBranch(api.PreviewBranchPrefix + "feature/x")
	if preview == nil {
		t.Fatal("no preview of feature/x")
	}
	if e.readBranch(api.PreviewBranchPrefix+"other") != nil {
		t.Fatal("branch other matches no glob but has a preview")
	}
	mainTarget, featTarget := poolTarget(t, status), poolTarget(t, preview)
	if mainTarget.Rendered == featTarget.Rendered || featTarget.SourceBranch != "feature/x" {
		t.Fatalf("preview target %+v, main's %+v", featTarget, mainTarget)
	}
	rendered := preview[api.RenderedFile(featTarget.Rendered)]
	r, err := api.ParseRendered([]byte(rendered))
	if err != nil {
		t.Fatalf("preview rendered config: %v", err)
	}
	if src := *r.Config.Storage.Files[0].Contents.Source; src != "data:,two" {
		t.Fatalf("preview renders %s, want the branch's content", src)
	}
	for p := range preview {
		if !strings.HasPrefix(p, "pools/") && !strings.HasPrefix(p, "rendered/") && p != "README.md" {
			t.Errorf("unexpected file %s on the preview branch", p)
		}
	}

	// Nothing moved: no new preview commit.
	head := e.srv.Head(t, "config", api.PreviewBranchPrefix+"feature/x")
	e.reconcile()
	if got := e.srv.Head(t, "config", api.PreviewBranchPrefix+"feature/x"); got != head {
		t.Fatalf("idle reconcile moved the preview %s → %s", head, got)
	}
	// A commit that renders the same (a comment) leaves the preview as it is.
	e.push("feature/x", map[string]string{"mc/notes.yaml": "# nothing to render\n"})
	e.reconcile()
	if got := e.srv.Head(t, "config", api.PreviewBranchPrefix+"feature/x"); got != head {
		t.Fatalf("a no-op commit moved the preview %s → %s", head, got)
	}
	// A broken commit: errors.yaml names the problem, no pool renders.
	e.push("feature/x", map[string]string{"mc/10-a.yaml": fileMC("10-a", "worker", "/usr/bin/a", "two")})
	e.reconcile()
	preview = e.readBranch(api.PreviewBranchPrefix + "feature/x")
	if !strings.Contains(preview["errors.yaml"], "/usr/bin/a") {
		t.Fatalf("errors.yaml = %q", preview["errors.yaml"])
	}
	// A new matching branch gets its preview even though main did not move.
	e.push("feature/y", map[string]string{"mc/10-a.yaml": fileMC("10-a", "worker", "/etc/a", "y")})
	e.reconcile()
	if e.readBranch(api.PreviewBranchPrefix+"feature/y") == nil {
		t.Fatal("no preview of feature/y")
	}
	// The status branch never names a preview.
	for p, data := range e.readBranch(api.StatusBranch) {
		if strings.Contains(data, "feature/") {
			t.Errorf("%s on %s mentions a preview branch", p, api.StatusBranch)
		}
	}
}

func poolTarget(t *testing.T, files map[string]string) api.PoolTarget {
	t.Helper()
	var pt api.PoolTarget
	mustYAML(t, files[api.PoolFile("worker")], &pt)
	return pt
}

func TestMatchAny(t *testing.T) {
	cases := []struct {
		globs  []string
		branch string
		want   bool
		err    bool
	}{
		{[]string{"feature/*"}, "feature/x", true, false},
		{[]string{"feature/*"}, "feature/x/y", false, false},
		{[]string{"pr-*", "main"}, "main", true, false},
		{[]string{"pr-*"}, "canary", false, false},
		{[]string{"[bad"}, "x", false, true},
	}
	for _, tc := range cases {
		got, err := matchAny(tc.globs, tc.branch)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("matchAny(%v, %q) = %v, %v", tc.globs, tc.branch, got, err)
		}
	}
}
