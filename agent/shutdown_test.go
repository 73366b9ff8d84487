package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// cancelSystemd cancels the agent's context (the SIGTERM) at its first
// Enable, i.e. mid-apply after the files were written.
type cancelSystemd struct {
	nodeops.Systemd
	once   sync.Once
	cancel context.CancelFunc
}

func (s *cancelSystemd) Enable(ctx context.Context, u ...string) error {
	s.once.Do(s.cancel)
	return s.Systemd.Enable(ctx, u...)
}

// TestStopMidApplyRollsBack: the context ends in the middle of an apply.
// The rollback runs on a context that outlives it, so the node is back at
// c1 exactly (units too); the interrupted update is not recorded as a
// failed config; the final report is pushed and one stop line logged.
// Before, the rollback's systemctl calls failed on the cancelled context.
func TestStopMidApplyRollsBack(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	must(t, e.converge(e.options()))
	e.publish(c2, livePolicy)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := e.options()
	o.Once = false
	o.Systemd = &cancelSystemd{Systemd: e.sd, cancel: cancel}
	log, hook := logtest.NewNullLogger()
	o.Log = log
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil on a stop", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("agent did not stop within 2m of its context ending")
	}
	if !e.at(c1) {
		t.Fatal("node is not back at c1 after the interrupted apply")
	}
	if j, _ := nodeops.ReadJournal(e.stateDir); j != nil {
		t.Fatalf("journal left: %+v", j)
	}
	st, err := LoadState(e.stateDir)
	must(t, err)
	if st.Current != c1.Name || st.Stage != StageIdle || st.Failed != "" {
		t.Fatalf("state %+v, want idle at c1, no failed config", st)
	}
	r := e.report()
	if r.State != api.StateWorking || !strings.Contains(r.Reason, "stopped during the update to "+c2.Name) {
		t.Fatalf("report %+v, want Working saying the update was stopped and rolled back", r)
	}
	stops := 0
	for _, en := range hook.AllEntries() {
		if en.Message == "agent stopping" {
			stops++
		}
	}
	if stops != 1 {
		t.Fatalf("%d stop lines, want 1", stops)
	}
	// Started again, it updates to c2.
	must(t, e.converge(e.options()))
	if !e.at(c2) {
		t.Fatal("not at c2 after the restart")
	}
}
