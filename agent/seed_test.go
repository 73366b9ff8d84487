package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"stoker.dev/stoker/api"
)

// TestSeedStateIsAgentState: the state a first-boot config seeds
// (api.SeedState, written by the hub's config server) is the agent's own
// state file: idle at Current, forward from StatusCommit.
func TestSeedStateIsAgentState(t *testing.T) {
	dir := t.TempDir()
	seed, err := json.Marshal(api.SeedState{Current: "rendered-worker-abc", StatusCommit: "0123456789abcdef0123456789abcdef01234567"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, api.AgentStateFile), seed, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := State{Current: "rendered-worker-abc", StatusCommit: "0123456789abcdef0123456789abcdef01234567"}
	if st.Current != want.Current || st.StatusCommit != want.StatusCommit || st.Stage != StageIdle || st.Pending != "" || st.Plan != nil {
		t.Fatalf("seeded state read as %+v, want %+v", st, want)
	}
	if got := configPath(dir, st.Current); got != filepath.Join(dir, api.AgentConfigsDir, "rendered-worker-abc.json") {
		t.Fatalf("kept config path %s", got)
	}
}
