package api

import (
	"fmt"
	"strings"
	"time"
)

// Branch names written by the hub and the agents. They are contracts:
// users' scripts, CI jobs and the Helm chart depend on them.
const (
	StatusBranch        = "stoker/status"
	FleetBranch         = "stoker/fleet"
	ReportsBranchPrefix = "stoker/reports/"
	PreviewBranchPrefix = "stoker/preview/"
	ReportFile          = "report.yaml"
	// AgentFile sits beside ReportFile on a report branch: what the
	// agent's build reads (AgentInfo). It is a file of its own, not a
	// field of the report, because hubs before it parse report.yaml
	// strictly and would drop a report with a field they do not know.
	AgentFile = "agent.yaml"
)

// AgentInfo is agent.yaml on stoker/reports/<node>.
type AgentInfo struct {
	// AgentVersion is the report's AgentVersion when this was written:
	// an agent.yaml beside a report of another version is stale (an
	// older agent that does not write it took over the branch).
	AgentVersion string `json:"agentVersion,omitempty"`
	// StatusLayouts are the stoker/status layout versions the agent
	// reads; absent (an agent before layout 2) means version 1 only.
	StatusLayouts []int `json:"statusLayouts,omitempty"`
}

// ReadsStatusLayout reports whether the agent that wrote r, with this
// agent.yaml beside it, reads stoker/status in layout version v.
func (a *AgentInfo) ReadsStatusLayout(r *Report, v int) bool {
	if a == nil || r == nil || a.AgentVersion != r.AgentVersion {
		return v == StatusLayoutV1
	}
	for _, l := range a.StatusLayouts {
		if l == v {
			return true
		}
	}
	return false
}

// ReportsBranch is the branch node's agent alone writes its report to.
func ReportsBranch(node string) string { return ReportsBranchPrefix + node }

// Paths of the files on stoker/status and stoker/fleet.
func PoolFile(pool string) string         { return "pools/" + pool + ".yaml" }
func NodeFile(node string) string         { return "nodes/" + node + ".yaml" }
func RenderedFile(rendered string) string { return "rendered/" + rendered + ".json" }

// DriftPolicy says what an agent does when a managed file drifts.
type DriftPolicy string

// Drift policies, selected per pool with the stoker.dev/drift annotation.
const (
	DriftReport  DriftPolicy = "report"
	DriftRestore DriftPolicy = "restore"
)

// PoolTarget is pools/<pool>.yaml on stoker/status: what the pool's nodes
// should converge to and under which rules.
type PoolTarget struct {
	Name string `json:"name"`
	// Rendered is the pool's target rendered config name.
	Rendered       string                `json:"rendered"`
	SourceBranch   string                `json:"sourceBranch"`
	SourceCommit   string                `json:"sourceCommit"`
	MachineConfigs []string              `json:"machineConfigs,omitempty"`
	Paused         bool                  `json:"paused,omitempty"`
	MaxUnavailable string                `json:"maxUnavailable,omitempty"`
	Drift          DriftPolicy           `json:"drift,omitempty"`
	Disruption     *NodeDisruptionPolicy `json:"disruptionPolicy,omitempty"`
}

// NodeTarget is nodes/<node>.yaml on stoker/status: the one file an agent
// reads to learn what it should run.
type NodeTarget struct {
	Name          string `json:"name"`
	Pool          string `json:"pool"`
	DesiredConfig string `json:"desiredConfig"`
}

// NodeState is a node's state as its agent reports it.
type NodeState string

// Node states, as MCO's daemon names them.
const (
	StateWorking  NodeState = "Working"
	StateDone     NodeState = "Done"
	StateDegraded NodeState = "Degraded"
	// StateUnreachable is never reported by an agent: it is the hub's
	// verdict on a node whose last report or heartbeat is older than
	// UnreachableMultiple heartbeats (MCO would see the node NotReady).
	StateUnreachable NodeState = "Unreachable"
)

// DefaultHeartbeat is how often an agent rewrites an unchanged report
// (agent --heartbeat); DefaultUnreachableMultiple heartbeats without a
// report make the hub mark the node Unreachable (hub --unreachable-after).
const (
	DefaultHeartbeat           = 10 * time.Minute
	DefaultUnreachableMultiple = 3
)

// Report is report.yaml on stoker/reports/<node>, written only by that
// node's agent.
type Report struct {
	Node          string            `json:"node"`
	State         NodeState         `json:"state"`
	CurrentConfig string            `json:"currentConfig,omitempty"`
	DesiredConfig string            `json:"desiredConfig,omitempty"`
	Reason        string            `json:"reason,omitempty"`
	Plan          *Plan             `json:"plan,omitempty"`
	Drift         []DriftFinding    `json:"drift,omitempty"`
	Events        []Event           `json:"events,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	BootID        string            `json:"bootID,omitempty"`
	AgentVersion  string            `json:"agentVersion,omitempty"`
	// Hook is the node lifecycle hook that failed the update in progress
	// or the last one, with its output; nil when none failed.
	Hook *HookResult `json:"hook,omitempty"`
	// Since is when State last changed; Heartbeat when the agent last
	// confirmed the report (it rewrites an unchanged report slowly).
	Since     time.Time `json:"since"`
	Heartbeat time.Time `json:"heartbeat"`
}

// HookResult is a node lifecycle hook (an executable under
// /etc/stoker/hooks.d/<point>/ on the node) that failed, as the agent
// reports it. Hooks are a Stoker addition; MCO has none.
type HookResult struct {
	// Point is before-drain, before-apply, before-reboot or after-reboot.
	Point string `json:"point"`
	// Hook is the hook's path on the node.
	Hook string `json:"hook"`
	// Config is the rendered config the update moved to.
	Config string `json:"config,omitempty"`
	// Error says how it failed (exit status, timeout, refused as unsafe).
	Error string `json:"error"`
	// Output is the end of its stdout and stderr (at most 4 KiB).
	Output string    `json:"output,omitempty"`
	Time   time.Time `json:"time"`
}

// Event is a notable thing the agent did (a drift restore, a rollback),
// kept short in the report; the branch history is the full timeline.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// ChangeKind names what a plan's change touches.
type ChangeKind string

// Change kinds.
const (
	ChangeFile       ChangeKind = "file"
	ChangeUnit       ChangeKind = "unit"
	ChangeDropin     ChangeKind = "dropin"
	ChangeSSHKey     ChangeKind = "sshkey"
	ChangeKargs      ChangeKind = "kernelArguments"
	ChangeKernelType ChangeKind = "kernelType"
	ChangeExtensions ChangeKind = "extensions"
	ChangeOSImage    ChangeKind = "osImageURL"
	ChangeFIPS       ChangeKind = "fips"
	ChangeDirectory  ChangeKind = "directory"
	ChangeLink       ChangeKind = "link"
	// ChangeIgnition is any other Ignition section (disks, filesystems,
	// raid, kernelArguments): MCO's daemon refuses every change there.
	ChangeIgnition ChangeKind = "ignition"
)

// Change is one difference between two rendered configs and the actions
// the disruption policy assigns to it.
type Change struct {
	Kind ChangeKind `json:"kind"`
	// Path for files, Name for units ("unit" or "unit/dropin") and keys.
	Path    string   `json:"path,omitempty"`
	Name    string   `json:"name,omitempty"`
	Op      string   `json:"op"` // added, changed, removed
	Actions []Action `json:"actions"`
	Reason  string   `json:"reason"`
}

// Plan is what moving from one rendered config to another does to a node.
type Plan struct {
	From    string   `json:"from,omitempty"`
	To      string   `json:"to"`
	Changes []Change `json:"changes,omitempty"`
	// Action is the strongest action of any change.
	Action ActionType `json:"action"`
	// Unreconcilable, when set, is why MCO's daemon would refuse this
	// update on a running node (Action is then ActionUnreconcilable): the
	// agent reports Degraded instead of applying it.
	Unreconcilable string `json:"unreconcilable,omitempty"`
}

// DriftFinding is one way the node differs from its current config.
type DriftFinding struct {
	// Kind: content, mode, owner, missing, symlink, unit, kernelArguments.
	Kind     string `json:"kind"`
	Path     string `json:"path,omitempty"`
	Unit     string `json:"unit,omitempty"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Diff     string `json:"diff,omitempty"`
}

// PoolFleet is pools/<pool>.yaml on stoker/fleet: observed counts, like
// the status of `oc get mcp`.
type PoolFleet struct {
	Name                    string    `json:"name"`
	Config                  string    `json:"config,omitempty"`
	SourceBranch            string    `json:"sourceBranch,omitempty"`
	SourceCommit            string    `json:"sourceCommit,omitempty"`
	Paused                  bool      `json:"paused,omitempty"`
	Updated                 bool      `json:"updated"`
	Updating                bool      `json:"updating"`
	Degraded                bool      `json:"degraded"`
	MachineCount            int       `json:"machineCount"`
	ReadyMachineCount       int       `json:"readyMachineCount"`
	UpdatedMachineCount     int       `json:"updatedMachineCount"`
	UnavailableMachineCount int       `json:"unavailableMachineCount"`
	DegradedMachineCount    int       `json:"degradedMachineCount"`
	Errors                  []Problem `json:"errors,omitempty"`
	// State is "" (rolling out as it should), PoolStatePaused or
	// PoolStateSourceInvalid.
	State string `json:"state,omitempty"`
	// Conditions are MCO's pool conditions (PoolConditionTypes) with
	// reason, message and lastTransitionTime.
	Conditions []Condition `json:"conditions,omitempty"`
	// Created is when the hub first saw the pool (AGE in `stoker status`).
	Created time.Time `json:"created,omitempty"`
	// Window is the pool's maintenance window and whether it is open (a
	// Stoker extension); nil when the pool has none.
	Window *WindowStatus `json:"window,omitempty"`
	// Held are the pool's nodes held in .stoker/rollout.yaml, sorted.
	Held []string `json:"held,omitempty"`
	// RolledOut is the last rendered config every node of the pool was
	// updated to (the last finished rollout).
	RolledOut string `json:"rolledOut,omitempty"`
	// RolloutStop is set while the pool's rollout is stopped at its
	// success threshold (stoker.dev/max-failed-percent).
	RolloutStop *RolloutStop `json:"rolloutStop,omitempty"`
}

// RolloutStop is why a pool's rollout to Target stopped: Degraded of the
// Updated nodes given Target went Degraded on it, more than
// MaxFailedPercent. It holds until the target changes or the threshold
// is raised above MaxFailedPercent.
type RolloutStop struct {
	Target           string `json:"target"`
	MaxFailedPercent int    `json:"maxFailedPercent"`
	Degraded         int    `json:"degraded"`
	Updated          int    `json:"updated"`
	// Nodes are the Degraded nodes (at most a few names).
	Nodes []string  `json:"nodes,omitempty"`
	Since time.Time `json:"since"`
}

// Message says why the rollout stopped, for conditions and notifications.
func (s RolloutStop) Message() string {
	pct := 0
	if s.Updated > 0 {
		pct = s.Degraded * 100 / s.Updated
	}
	return fmt.Sprintf("rollout to %s stopped: %d of %d nodes given it went Degraded (%s), %d%% > %s %d%%; push a new commit or raise the threshold",
		s.Target, s.Degraded, s.Updated, strings.Join(s.Nodes, ", "), pct, MaxFailedPercentAnnotation, s.MaxFailedPercent)
}

// NodeFleet is nodes/<node>.yaml on stoker/fleet: the node's last report
// as the hub saw it, plus membership errors the hub found.
type NodeFleet struct {
	Name          string         `json:"name"`
	Pool          string         `json:"pool,omitempty"`
	State         NodeState      `json:"state,omitempty"`
	CurrentConfig string         `json:"currentConfig,omitempty"`
	DesiredConfig string         `json:"desiredConfig,omitempty"`
	Reason        string         `json:"reason,omitempty"`
	Drift         []DriftFinding `json:"drift,omitempty"`
	// Hook is the report's failed lifecycle hook, with its output.
	Hook       *HookResult `json:"hook,omitempty"`
	LastReport time.Time   `json:"lastReport,omitempty"`
	Error      string      `json:"error,omitempty"`
	// Waiting says why the node is behind its pool's target: held in
	// .stoker/rollout.yaml, or its update waits for the pool's window.
	Waiting string `json:"waiting,omitempty"`
}
