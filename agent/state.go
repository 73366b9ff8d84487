package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// Stage is where the agent is in moving the node from its current config
// to a pending one. It is persisted before the step it names is taken, so
// a restart knows what may have been done.
type Stage string

// Stages, in the order an update goes through them.
const (
	// StageIdle: no update in progress; the node runs Current.
	StageIdle Stage = ""
	// StagePlanned: Pending and its plan are chosen; nothing written.
	StagePlanned Stage = "planned"
	// StageDrained: the node is drained (Cordoned says whether by us).
	StageDrained Stage = "drained"
	// StageApplying: Apply was started; the applier's journal is the
	// truth about what was written.
	StageApplying Stage = "applying"
	// StageApplied: Apply finished; the journal is "applied".
	StageApplied Stage = "applied"
	// StageRebooting: a reboot into Pending is (about to be) requested;
	// BootID is the boot the config was applied in.
	StageRebooting Stage = "rebooting"
	// StageCommitting: Pending validated; Commit is (about to be) called.
	StageCommitting Stage = "committing"
	// StageRollingBack: Pending is abandoned (Reason says why); Rollback
	// is (about to be) called.
	StageRollingBack Stage = "rollingBack"
)

// State is the agent's persisted state in <state-dir>/agent-state.json.
type State struct {
	// Current is the rendered config the node runs and last validated;
	// empty on a node Stoker never configured.
	Current string `json:"current,omitempty"`
	// Pending is the config an update in progress moves to.
	Pending string `json:"pending,omitempty"`
	Stage   Stage  `json:"stage,omitempty"`
	// BootID is the boot Pending was applied in; a different boot id at
	// start means the node rebooted since.
	BootID string `json:"bootID,omitempty"`
	// Cordoned is set when the agent cordoned the node, so it uncordons
	// only what it cordoned; it is kept when the update is abandoned, so
	// that cordon is undone too.
	Cordoned bool `json:"cordoned,omitempty"`
	// DrainStarted is when the first attempt of the drain in progress was
	// made (saved before it): the drain deadline counts from it, across
	// restarts.
	DrainStarted time.Time `json:"drainStarted,omitempty"`
	// Plan is the plan of the update in progress, or of the last one.
	Plan *api.Plan `json:"plan,omitempty"`
	// Reason is why the last update failed or why validation fails now.
	Reason string `json:"reason,omitempty"`
	// Failed is the config whose update failed; FailedAt when. The agent
	// does not retry it before the retry delay has passed.
	Failed   string    `json:"failed,omitempty"`
	FailedAt time.Time `json:"failedAt,omitempty"`
	// Hook is the lifecycle hook that failed the update in progress or
	// the last one, with its output; reported until the node converges
	// or a new update starts.
	Hook *api.HookResult `json:"hook,omitempty"`
	// RebootBack is the boot id of a boot into an abandoned Reboot
	// update, rolled back since: the agent reboots out of it (into
	// Current) before anything else, and clears it in the next boot.
	RebootBack string `json:"rebootBack,omitempty"`
	// StatusCommit is the last stoker/status commit the agent acted on
	// (read its target from). The agent only acts on a status head that
	// descends from it: a rewound or unrelated head is refused. It only
	// moves forward; save keeps it when a stage transition builds a new
	// State without it.
	StatusCommit string `json:"statusCommit,omitempty"`
}

const (
	stateFile  = api.AgentStateFile // a first-boot config seeds it (api.SeedState)
	configsDir = api.AgentConfigsDir
	lockFile   = "agent.lock"
)

func statePath(dir string) string { return filepath.Join(dir, stateFile) }

// configPath is where the agent keeps a copy of a rendered config it
// applies, so it can plan from, roll back to and validate against it
// after the hub has moved on.
func configPath(dir, name string) string {
	return filepath.Join(dir, configsDir, filepath.Base(name)+".json")
}

// LoadState reads the state in dir; a missing file is a fresh node.
func LoadState(dir string) (State, error) {
	data, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read agent state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, fmt.Errorf("read agent state %s: %w", statePath(dir), err)
	}
	return s, nil
}

func saveState(dir string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode agent state: %w", err)
	}
	if err := nodeops.WriteFile(statePath(dir), append(data, '\n'),
		nodeops.FileOptions{Mode: 0o600, UID: -1, GID: -1, DirMode: 0o700}); err != nil {
		return fmt.Errorf("write agent state: %w", err)
	}
	return nil
}

// saveConfig keeps the raw rendered config name in the state dir.
func saveConfig(dir, name string, raw []byte) error {
	if err := nodeops.WriteFile(configPath(dir, name), raw,
		nodeops.FileOptions{Mode: 0o600, UID: -1, GID: -1, DirMode: 0o700}); err != nil {
		return fmt.Errorf("keep rendered config %s: %w", name, err)
	}
	return nil
}

// loadConfig reads a kept rendered config; "" is the empty config (nil).
func loadConfig(dir, name string) (*api.Rendered, error) {
	if name == "" {
		return nil, nil
	}
	data, err := os.ReadFile(configPath(dir, name))
	if err != nil {
		return nil, fmt.Errorf("read kept rendered config %s: %w", name, err)
	}
	r, err := api.ParseRendered(data)
	if err != nil {
		return nil, fmt.Errorf("read kept rendered config %s: %w", name, err)
	}
	return r, nil
}

// pruneConfigs removes kept configs other than keep.
func pruneConfigs(dir string, keep ...string) error {
	entries, err := os.ReadDir(filepath.Join(dir, configsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list kept rendered configs: %w", err)
	}
	want := map[string]bool{}
	for _, k := range keep {
		if k != "" {
			want[filepath.Base(k)+".json"] = true
		}
	}
	for _, e := range entries {
		if !want[e.Name()] {
			if err := os.Remove(filepath.Join(dir, configsDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove kept rendered config %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// sweepTemp removes the temporary files of atomic writes a kill
// interrupted: next to the files the current and pending configs manage,
// in the state dir and among the kept configs (nodeops.SweepTemp has the
// rules). Failing to sweep is logged: it never stops recovery.
func (a *agent) sweepTemp() {
	var known []*api.Rendered
	for _, name := range []string{a.st.Current, a.st.Pending} {
		if r, err := loadConfig(a.o.StateDir, name); err == nil && r != nil {
			known = append(known, r)
		}
	}
	if _, err := a.applier.SweepTemp(known...); err != nil {
		a.log.WithError(err).Warn("sweep temporary files")
	}
	if removed, err := nodeops.SweepDir(filepath.Join(a.o.StateDir, configsDir)); err != nil {
		a.log.WithError(err).Warn("sweep temporary files")
	} else if len(removed) > 0 {
		a.log.WithField("path", strings.Join(removed, " ")).Info("removed temporary files of interrupted writes")
	}
}
