//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	examplesrepo "stoker.dev/stoker/examples-repo"
	"stoker.dev/stoker/reconciler/fleetview"
)

// TestDemoCanaryWalkthrough: the demo's canary branch shares main's
// history, so the README's first canary step (git switch canary && git
// merge main) works, and the relabel command the demo prints moves a node
// into the canary pool.
func TestDemoCanaryWalkthrough(t *testing.T) {
	t.Parallel()
	f := newFleet(t, nil)
	if _, err := f.Seed(examplesrepo.FS, "main", "import examples-repo"); err != nil {
		t.Fatal(err)
	}
	if err := f.Branch("canary", "main"); err != nil {
		t.Fatal(err)
	}
	git := gitWork(t, f)
	git("switch", "-q", "canary")
	git("merge", "main") // refused for unrelated histories before

	addNodes(t, f, worker("worker-c", "c"))
	inPool := func(pool string) func(v *fleetview.FleetView) bool {
		return func(v *fleetview.FleetView) bool {
			for _, n := range v.Nodes {
				if n.Name == "worker-c" && n.Pool == pool {
					return true
				}
			}
			return false
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	if _, err := f.WaitFor(ctx, 3*time.Minute, inPool("worker"), nil); err != nil {
		t.Fatalf("worker-c never joined the worker pool: %v", err)
	}
	line, err := f.RelabelCommand("worker-c", "node-role.kubernetes.io/worker-canary", "")
	if err != nil {
		t.Fatal(err)
	}
	f.Agent("worker-c").Stop()
	var log bytes.Buffer
	cmd := exec.Command("bash", "-c", line)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	if _, err := f.WaitFor(ctx, 3*time.Minute, inPool("worker-canary"), nil); err != nil {
		t.Fatalf("worker-c after the printed relabel command (%s): %v\n%s", line, err, log.String())
	}
	if !strings.Contains(line, "worker-canary=") || !strings.Contains(line, "--node worker-c") {
		t.Fatalf("relabel command: %s", line)
	}
}
