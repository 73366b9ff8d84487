package api

// The agent's state dir layout a machine's first-boot config seeds (the
// hub's /config/<pool> writes it, the agent reads it): the state file and
// the kept copy of the rendered config it names, as the agent keeps them
// after an update of its own.
const (
	// AgentStateFile is the agent's state, under its --state-dir.
	AgentStateFile = "agent-state.json"
	// AgentConfigsDir holds the rendered configs the agent keeps, each as
	// <name>.json with the bytes of rendered/<name>.json on stoker/status.
	AgentConfigsDir = "configs"
	// DefaultAgentStateDir is the agent's default --state-dir.
	DefaultAgentStateDir = "/var/lib/stoker"
)

// SeedState is the part of the agent's state a first-boot config writes:
// the node runs Current (Ignition wrote its files), acted on at
// StatusCommit. The agent starts idle, validates the disk against Current
// and reports Done without applying (or backing up) anything. The field
// names are the agent's own (agent.State).
type SeedState struct {
	Current      string `json:"current"`
	StatusCommit string `json:"statusCommit,omitempty"`
}
