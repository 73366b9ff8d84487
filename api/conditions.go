package api

// Pool condition types on stoker/fleet, as MCO's MachineConfigPool status
// has them (mcfgv1.MachineConfigPoolUpdated, ...Updating, ...Degraded,
// ...RenderDegraded).
const (
	PoolUpdated        = "Updated"
	PoolUpdating       = "Updating"
	PoolDegraded       = "Degraded"
	PoolRenderDegraded = "RenderDegraded"
)

// PoolConditionTypes lists the condition types every pool carries, in the
// order they are printed.
var PoolConditionTypes = []string{PoolUpdated, PoolUpdating, PoolDegraded, PoolRenderDegraded}

// Reasons of the pool conditions (CamelCase, as Kubernetes conditions).
const (
	ReasonAllNodesUpdated     = "AllNodesUpdated"
	ReasonNodesUpdating       = "NodesUpdating"
	ReasonPaused              = "Paused"
	ReasonSourceInvalid       = "SourceInvalid"
	ReasonSourceBranchMissing = "SourceBranchMissing"
	ReasonNodeDegraded        = "NodeDegraded"
	ReasonRenderDegraded      = "RenderDegraded"
	ReasonNoRender            = "NoRender"
	ReasonAsExpected          = "AsExpected"
	// ReasonRolloutStopped: more nodes went Degraded on the target than
	// the pool's stoker.dev/max-failed-percent allows (Stoker's, not MCO's).
	ReasonRolloutStopped = "RolloutStopped"
)

// Pool states: why a pool does not move, beside its conditions. A pool
// whose source fails validation is "source invalid", never "paused": it
// keeps its last good render, and the errors are on the pool.
const (
	PoolStatePaused        = "paused"
	PoolStateSourceInvalid = "source invalid"
	// PoolStateStopped: the rollout stopped at its success threshold
	// (RolloutStop says why); it stays stopped until the target changes
	// or the threshold is raised.
	PoolStateStopped = "rollout stopped"
)

// PoolCondition returns the condition of type t, or nil.
func (p PoolFleet) PoolCondition(t string) *Condition {
	for i := range p.Conditions {
		if p.Conditions[i].Type == t {
			return &p.Conditions[i]
		}
	}
	return nil
}
