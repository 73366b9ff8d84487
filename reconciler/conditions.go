package reconciler

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/rollout"
)

// poolStatus is what decides a pool's conditions beyond its counts.
type poolStatus struct {
	// sourceInvalid: the default branch (frozen: no pool moves) or the
	// pool's own source branch fails; the pool keeps its last good render.
	sourceInvalid bool
	// frozen: the default branch fails, so no node of the pool moves.
	frozen bool
}

// setPoolConditions sets pf's State, its MCO conditions and the Updated,
// Updating and Degraded columns from its counts and errors, keeping each
// condition's lastTransitionTime from prev while its status holds, as
// MCO's node controller does in calculateStatus (Updated when every node
// is updated, ready and available; Updating false with a message when
// paused; Degraded when a node is degraded or the render is).
func setPoolConditions(pf *api.PoolFleet, prev []metav1.Condition, now time.Time, st poolStatus, members []rollout.PlanNode) {
	pf.Conditions = append([]metav1.Condition(nil), prev...)
	set := func(t string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&pf.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason,
			Message: msg, LastTransitionTime: metav1.NewTime(now)})
	}
	target := pf.Config
	line := "rendered config " + target
	switch {
	case st.sourceInvalid:
		pf.State = api.PoolStateSourceInvalid
	case pf.Paused:
		pf.State = api.PoolStatePaused
	case pf.RolloutStop != nil:
		pf.State = api.PoolStateStopped
	default:
		pf.State = ""
	}

	updated := target != "" && pf.UpdatedMachineCount == pf.MachineCount &&
		pf.ReadyMachineCount == pf.MachineCount && pf.UnavailableMachineCount == 0
	switch {
	case target == "":
		set(api.PoolUpdated, false, api.ReasonNoRender, "the pool has never rendered")
	case updated:
		set(api.PoolUpdated, true, api.ReasonAllNodesUpdated, "All nodes are updated with "+line)
	default:
		set(api.PoolUpdated, false, api.ReasonNodesUpdating,
			fmt.Sprintf("%d of %d nodes are updated with %s", pf.UpdatedMachineCount, pf.MachineCount, line))
	}

	updating := false
	switch {
	case updated || target == "":
		set(api.PoolUpdating, false, api.ReasonAllNodesUpdated, "")
	case st.frozen:
		set(api.PoolUpdating, false, api.ReasonSourceInvalid, "the default branch fails validation; no node moves until it is fixed")
	case pf.Paused:
		set(api.PoolUpdating, false, api.ReasonPaused, "Pool is paused; will not update to "+line)
	case pf.RolloutStop != nil:
		set(api.PoolUpdating, false, api.ReasonRolloutStopped, pf.RolloutStop.Message())
	default:
		updating = true
		set(api.PoolUpdating, true, api.ReasonNodesUpdating, "All nodes are updating to "+line)
	}

	renderDegraded := len(pf.Errors) > 0
	if renderDegraded {
		reason := api.ReasonSourceInvalid
		for _, e := range pf.Errors {
			if strings.Contains(e.Message, "does not exist") && strings.HasSuffix(e.Field, api.SourceBranchAnnotation) {
				reason = api.ReasonSourceBranchMissing
			}
		}
		msg := pf.Errors[0].String()
		if len(pf.Errors) > 1 {
			msg = fmt.Sprintf("%s (and %d more)", msg, len(pf.Errors)-1)
		}
		set(api.PoolRenderDegraded, true, reason, msg)
	} else {
		set(api.PoolRenderDegraded, false, api.ReasonAsExpected, "")
	}

	var degraded []string
	for _, n := range members {
		if n.Report != nil && n.Report.State == api.StateDegraded {
			degraded = append(degraded, fmt.Sprintf("Node %s is reporting: %q", n.Name, n.Report.Reason))
		}
	}
	switch {
	case len(degraded) > 0:
		set(api.PoolDegraded, true, api.ReasonNodeDegraded,
			fmt.Sprintf("%d nodes are reporting degraded status on sync: %s", len(degraded), strings.Join(degraded, ", ")))
	case renderDegraded:
		set(api.PoolDegraded, true, api.ReasonRenderDegraded, "the pool's source does not render: "+pf.PoolCondition(api.PoolRenderDegraded).Message)
	default:
		set(api.PoolDegraded, false, api.ReasonAsExpected, "")
	}
	pf.Updated, pf.Updating, pf.Degraded = updated, updating, len(degraded) > 0 || renderDegraded
}

// notManaged clears Done for a node Stoker does not manage: one in no pool
// (or in two custom pools: rollout.Assign's error) or one that never
// applied a rendered config. MCO's isNodeManaged counts a node without a
// current config as unmanaged; its report's Done only says the agent has
// nothing to do.
func notManaged(f *api.NodeFleet) {
	if f.State != api.StateDone {
		return
	}
	switch {
	case f.Pool == "":
		f.State = ""
		if f.Reason == "" && f.Error == "" {
			f.Reason = "in no pool: no pool's nodeSelector matches its labels"
		}
	case f.CurrentConfig == "":
		f.State = ""
		if f.Reason == "" {
			f.Reason = "has not applied a rendered config yet"
		}
	}
}
