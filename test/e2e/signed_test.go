//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/gitserver"
)

// logHas reports whether process name's log (hub, agent-<node>) holds s.
func logHas(f *demo.Fleet, name, s string) bool {
	data, _ := os.ReadFile(filepath.Join(f.Dir, "logs", name+".log"))
	return strings.Contains(string(data), s)
}

// TestSignedFleet runs the whole signed chain with a hub and agents as
// processes on a real git daemon: reviewer-signed commits converge and
// every hub commit verifies with `git verify-commit`; an unsigned push to
// main is not rendered; a forged stoker/status commit and a rewind to an
// older hub-signed commit are refused by the agents (Degraded with the
// reason in their reports and logs) and the nodes keep their files; the
// hub supersedes the forged head; a node without a listed key has its
// reports ignored by --require-signed-reports. Each refusal is named in
// Git and in the logs.
func TestSignedFleet(t *testing.T) {
	t.Parallel()
	f, err := demo.NewFleet(t.TempDir(), stokerBin, interval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			dumpLogs(t, f)
		}
	})
	keys, err := f.EnableSigning("w-0", "w-1") // w-2 gets no report key
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commit("main", simpleRepo("1", false, "v1"), nil, "seed main (signed)"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.StartHub(); err != nil {
		t.Fatal(err)
	}
	addNodes(t, f, worker("w-0", "a"), worker("w-1", "b"))
	v := waitConverged(t, f, "", 2*time.Minute)
	good := poolOf(v, "worker").Config
	allowed := filepath.Join(t.TempDir(), "hub.allowed")
	pub, err := os.ReadFile(keys.HubPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(allowed, []byte("hub "+string(pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	verify := func(rev string) error {
		_, err := gitserver.Git(f.RepoPath(), []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=gpg.ssh.allowedSignersFile",
			"GIT_CONFIG_VALUE_0=" + allowed}, "verify-commit", rev)
		return err
	}
	for _, b := range []string{api.StatusBranch, api.FleetBranch} {
		if err := verify(b); err != nil {
			t.Fatalf("%s is not signed by the hub: %v", b, err)
		}
	}
	for _, n := range []string{"w-0", "w-1"} {
		if !strings.Contains(readRoot(t, f, n, e2eFile), "v1") {
			t.Fatalf("%s does not have v1", n)
		}
	}

	// An unsigned push to main is not rendered.
	unsigned, err := gitserver.CommitFiles(f.RepoPath(), "main", map[string]string{
		"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "unsigned")}, nil, "unreviewed")
	if err != nil {
		t.Fatal(err)
	}
	v, err = f.WaitFor(context.Background(), time.Minute, func(v *fleetview.FleetView) bool {
		errs := poolOf(v, "worker").Errors
		return len(errs) > 0 && errs[0].Commit == unsigned
	}, nil)
	if err != nil {
		t.Fatalf("unsigned head not reported on stoker/fleet: %v\n%s", err, table(v))
	}
	if !strings.Contains(poolOf(v, "worker").Errors[0].Message, "unsigned") || v.Trust == nil {
		t.Fatalf("fleet error %+v / trust %+v", poolOf(v, "worker").Errors, v.Trust)
	}
	if !logHas(f, "hub", "refusing source main") {
		t.Error("hub log does not name the refused source head")
	}
	if c := poolOf(v, "worker").Config; c != good {
		t.Fatalf("pool moved to %s on an unsigned head", c)
	}
	if _, err := f.Commit("main", simpleRepo("1", false, "v2"), nil, "v2 (signed)"); err != nil {
		t.Fatal(err)
	}
	v = waitConverged(t, f, good, 2*time.Minute)
	good = poolOf(v, "worker").Config
	signedHead := f.Git.Head(t, demo.RepoName, api.StatusBranch)

	// With the hub stopped (so it cannot supersede at once), a forged
	// status commit: the agents refuse it and keep v2.
	f.Hub().Stop()
	forged, err := gitserver.CommitFiles(f.RepoPath(), api.StatusBranch, map[string]string{
		api.NodeFile("w-0"): "name: w-0\npool: worker\ndesiredConfig: rendered-worker-forged\n"}, nil, "forged")
	if err != nil {
		t.Fatal(err)
	}
	refusedBy := func(node, head, reason string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			r, err := f.Report(node)
			if err == nil && r.State == api.StateDegraded && strings.Contains(r.Reason, head) && strings.Contains(r.Reason, reason) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not refuse %s (%s): report %+v, %v", node, head, reason, r, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := readRoot(t, f, node, e2eFile); got != "v2" {
			t.Fatalf("%s: %s = %q after a refused head", node, e2eFile, got)
		}
		if !logHas(f, "agent-"+node, "refusing stoker/status at "+head) {
			t.Errorf("agent %s log does not name the refused head %s", node, head)
		}
	}
	refusedBy("w-0", forged, "unsigned")
	refusedBy("w-1", forged, "not signed by a key in --trust-hub-key")

	// A rewind to an older commit the hub did sign: replay refused.
	older, err := gitserver.Git(f.RepoPath(), nil, "rev-parse", signedHead+"~1")
	if err != nil {
		t.Fatal(err)
	}
	older = strings.TrimSpace(older)
	if err := verify(older); err != nil {
		t.Fatalf("the rewind target %s is not hub-signed: %v", older, err)
	}
	if _, err := gitserver.Git(f.RepoPath(), nil, "update-ref", "refs/heads/"+api.StatusBranch, older); err != nil {
		t.Fatal(err)
	}
	refusedBy("w-0", older, "does not descend")

	// The forged head is back; the hub restarts and commits over it.
	if _, err := gitserver.Git(f.RepoPath(), nil, "update-ref", "refs/heads/"+api.StatusBranch, forged); err != nil {
		t.Fatal(err)
	}
	if _, err := f.StartHub(); err != nil {
		t.Fatal(err)
	}
	addNodes(t, f, worker("w-2", "c")) // no report key: ignored by the hub
	v, err = f.WaitFor(context.Background(), 2*time.Minute, func(v *fleetview.FleetView) bool {
		if nodeOf(v, "w-0").State != api.StateDone || nodeOf(v, "w-1").State != api.StateDone || v.Trust == nil {
			return false
		}
		for _, r := range v.Trust.Refused {
			if r.Kind == "report" && r.Node == "w-2" {
				return true
			}
		}
		return false
	}, nil)
	if err != nil {
		t.Fatalf("fleet did not recover or w-2's unsigned reports were not named: %v\n%s", err, table(v))
	}
	if nodeOf(v, "w-2").Name != "" {
		t.Errorf("w-2's unsigned report reached stoker/fleet: %+v", nodeOf(v, "w-2"))
	}
	if err := verify(api.StatusBranch); err != nil {
		t.Fatalf("status head after superseding is not hub-signed: %v", err)
	}
	if parent, _ := gitserver.Git(f.RepoPath(), nil, "rev-parse", api.StatusBranch+"^"); !strings.HasPrefix(parent, forged) {
		t.Errorf("the hub did not commit on top of the forged head (parent %s, forged %s)", parent, forged)
	}
	if out, _ := gitserver.Git(f.RepoPath(), nil, "show", api.StatusBranch+":"+api.NodeFile("w-0")); strings.Contains(out, "forged") {
		t.Errorf("the forged target survived: %s", out)
	}
	if !logHas(f, "hub", "refusing status stoker/status") {
		t.Error("hub log does not name the superseded status head")
	}
	for _, n := range []string{"w-0", "w-1"} {
		if got := readRoot(t, f, n, e2eFile); got != "v2" {
			t.Errorf("%s: %s = %q", n, e2eFile, got)
		}
	}
}
