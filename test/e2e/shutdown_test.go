//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/reconciler/fleetview"
)

// TestSIGTERMMidApply (issue 15, finding 8), from outside: the built
// agent gets SIGTERM right after its apply journal appears (mid-apply,
// 200 files, a unit and a kernel argument). Before, the rollback ran on
// the cancelled context, so its systemctl and grubby calls failed and the
// node was left between configs, and nothing was logged. Now the process
// exits with the node all-old (rolled back) or all-new (applied, to be
// finished at restart), logs "agent stopping" once, and converges after
// a restart. STOKER_SIGTERMS sets the number of runs (default 2).
func TestSIGTERMMidApply(t *testing.T) {
	runs := 2
	if v := os.Getenv("STOKER_SIGTERMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("STOKER_SIGTERMS=%q: want a positive number", v)
		}
		runs = n
	}
	cfg := crashConfig{gen: 0, variant: "A"}
	f := newFleet(t, map[string]map[string]string{"main": {
		"pools/worker.yaml":            pool("worker", "1", false, ""),
		"machineconfigs/50-crash.yaml": cfg.mc(),
	}})
	root := f.Root(crashNode)
	if err := os.MkdirAll(filepath.Join(root, "etc/crash"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < crashOrig; i++ {
		if err := os.WriteFile(filepath.Join(root, crashPath(i)), []byte(origContent(i)), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, crashPath(i)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	addNodes(t, f, worker(crashNode, "a"))
	converge := func(prev string) string {
		t.Helper()
		var last *fleetview.FleetView
		v, err := f.WaitFor(ctxT(t, 5*time.Minute), 3*time.Minute, func(v *fleetview.FleetView) bool {
			last = v
			n, p := nodeOf(v, crashNode), poolOf(v, "worker")
			return p.Config != "" && p.Config != prev && n.State == api.StateDone && n.CurrentConfig == p.Config
		}, nil)
		if err != nil {
			t.Fatalf("not Done on the new config within 3m: %v\n%s", err, table(last))
		}
		return poolOf(v, "worker").Config
	}
	current := converge("")
	outcomes := map[string]int{}
	for run := 1; run <= runs; run++ {
		prev := cfg
		cfg = crashConfig{gen: prev.gen + 1, variant: map[string]string{"A": "B", "B": "A"}[prev.variant]}
		if _, err := f.Commit("main", map[string]string{"machineconfigs/50-crash.yaml": cfg.mc()}, nil, fmt.Sprintf("gen %d", cfg.gen)); err != nil {
			t.Fatal(err)
		}
		// The event: the apply journal appears.
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if _, err := os.Stat(nodeops.JournalPath(f.State(crashNode))); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: no apply started within 3m", run)
			}
			time.Sleep(time.Millisecond)
		}
		agent := f.Agent(crashNode)
		before, _ := os.ReadFile(agent.Log) // the log is appended across restarts
		agent.Signal(syscall.SIGTERM)
		select {
		case <-agent.Done():
		case <-time.After(3 * time.Minute):
			t.Fatalf("run %d: agent still running 3m after SIGTERM", run)
		}
		outcome := ""
		switch {
		case prev.differs(f) == "":
			outcome = "old"
		case cfg.differs(f) == "":
			outcome = "new"
		default:
			t.Fatalf("run %d: after SIGTERM neither all-old nor all-new: old: %s; new: %s", run, prev.differs(f), cfg.differs(f))
		}
		outcomes[outcome]++
		logData, err := os.ReadFile(agent.Log)
		if err != nil {
			t.Fatal(err)
		}
		logData = logData[len(before):]
		if n := strings.Count(string(logData), "agent stopping"); n != 1 {
			t.Fatalf("run %d: %d \"agent stopping\" lines in the agent's log since SIGTERM, want 1:\n%s", run, n, logData)
		}
		if _, err := f.StartAgent(crashNode); err != nil {
			t.Fatal(err)
		}
		current = converge(current)
		if d := cfg.differs(f); d != "" {
			t.Fatalf("run %d: after restart: %s", run, d)
		}
		if j, err := nodeops.ReadJournal(f.State(crashNode)); j != nil || err != nil {
			t.Fatalf("run %d: journal left: %+v %v", run, j, err)
		}
	}
	t.Logf("SIGTERM mid-apply: %d runs, outcomes %v", runs, outcomes)
}
