package agent

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/test/gitserver"
)

// TestForwardOnly force-pushes stoker/status from a stale clone (a rewind)
// and then an unrelated history to a real git daemon: the agent refuses
// both, reports Degraded naming both commits, and applies nothing. A new
// commit on top of the real history (how people roll back) is applied.
func TestForwardOnly(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	must(t, e.converge(e.options()))
	s1 := e.srv.Head(t, "cfg", api.StatusBranch)
	stale := filepath.Join(t.TempDir(), "stale")
	if _, err := gitserver.Git("", nil, "clone", "-q", "-b", api.StatusBranch, e.srv.URL("cfg"), stale); err != nil {
		t.Fatal(err)
	}
	e.publish(c2, livePolicy)
	must(t, e.converge(e.options()))
	s2 := e.srv.Head(t, "cfg", api.StatusBranch)
	if !e.at(c2) {
		t.Fatal("node did not reach c2")
	}
	st, err := LoadState(e.stateDir)
	must(t, err)
	if st.StatusCommit != s2 {
		t.Fatalf("state statusCommit = %q, want the head acted on %s", st.StatusCommit, s2)
	}
	systemdCalls := len(e.sd.Systemd.(*nodeops.RootSystemd).Log())

	refused := func(what, head string) {
		t.Helper()
		if err := e.converge(e.options()); !errors.Is(err, ErrDegraded) {
			t.Fatalf("%s: --once returned %v, want ErrDegraded", what, err)
		}
		r := e.report()
		if r.State != api.StateDegraded || r.CurrentConfig != c2.Name ||
			!strings.Contains(r.Reason, head) || !strings.Contains(r.Reason, s2) || !strings.Contains(r.Reason, "does not descend") {
			t.Fatalf("%s: report %+v, want Degraded at %s naming %s and %s", what, r, c2.Name, head, s2)
		}
		if !e.at(c2) {
			t.Fatalf("%s: node left c2", what)
		}
		if n := len(e.sd.Systemd.(*nodeops.RootSystemd).Log()); n != systemdCalls {
			t.Fatalf("%s: systemd called %d more times", what, n-systemdCalls)
		}
		st, err := LoadState(e.stateDir)
		must(t, err)
		if st.Current != c2.Name || st.Stage != StageIdle || st.StatusCommit != s2 {
			t.Fatalf("%s: state %+v, want idle at %s, statusCommit %s", what, st, c2.Name, s2)
		}
	}

	// The stale clone still has s1 (target c1): a force push rewinds.
	if _, err := gitserver.Git(stale, nil, "push", "-q", "--force", "origin", "HEAD:refs/heads/"+api.StatusBranch); err != nil {
		t.Fatal(err)
	}
	if h := e.srv.Head(t, "cfg", api.StatusBranch); h != s1 {
		t.Fatalf("status head after force push %s, want %s", h, s1)
	}
	refused("rewind", s1)

	// An unrelated history whose target is c1.
	if _, err := gitserver.Git(stale, nil, "checkout", "-q", "--orphan", "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := gitserver.Git(stale, []string{"GIT_AUTHOR_NAME=x", "GIT_AUTHOR_EMAIL=x@x", "GIT_COMMITTER_NAME=x", "GIT_COMMITTER_EMAIL=x@x"},
		"commit", "-q", "-m", "unrelated"); err != nil {
		t.Fatal(err)
	}
	if _, err := gitserver.Git(stale, nil, "push", "-q", "--force", "origin", "HEAD:refs/heads/"+api.StatusBranch); err != nil {
		t.Fatal(err)
	}
	orphan := e.srv.Head(t, "cfg", api.StatusBranch)
	refused("unrelated history", orphan)

	// Back to the real history, then a new commit on top of it (a revert).
	if _, err := gitserver.Git(e.srv.Path("cfg"), nil, "update-ref", "refs/heads/"+api.StatusBranch, s2); err != nil {
		t.Fatal(err)
	}
	e.publish(c1, livePolicy)
	must(t, e.converge(e.options()))
	if r := e.report(); r.State != api.StateDone || r.CurrentConfig != c1.Name || !e.at(c1) {
		t.Fatalf("after a forward revert: report %+v, at c1 %v", r, e.at(c1))
	}
}
