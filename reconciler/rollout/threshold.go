package rollout

import (
	"sort"
	"time"

	"stoker.dev/stoker/api"
)

// maxStopNodes bounds the Degraded node names a RolloutStop lists.
const maxStopNodes = 5

// Stop is the pool's success threshold (flightctl's, not MCO's): the
// rollout to pool.Target stops when more than pool.MaxFailedPercent of
// the members given that target (Desired == Target) went Degraded on it
// (their agent reports Degraded with that desired config). A stop is
// latched: prev, the stop recorded on stoker/fleet, holds while the
// target is the same and the threshold is not raised above it, even if
// the Degraded nodes recover. nil means the rollout may go on, or every
// member has the target already (nothing is held back).
func Stop(pool PlanPool, members []PlanNode, prev *api.RolloutStop, now time.Time) *api.RolloutStop {
	if pool.MaxFailedPercent == nil || pool.Target == "" {
		return nil
	}
	left := false
	for _, n := range members {
		left = left || n.Desired != pool.Target
	}
	if !left {
		return nil // every node has the target: nothing is held back
	}
	max := *pool.MaxFailedPercent
	if prev != nil && prev.Target == pool.Target && max <= prev.MaxFailedPercent {
		return prev
	}
	updated, degraded := 0, 0
	var nodes []string
	for _, n := range members {
		if n.Desired != pool.Target {
			continue
		}
		updated++
		if n.Report != nil && n.Report.State == api.StateDegraded && n.Report.DesiredConfig == pool.Target {
			degraded++
			nodes = append(nodes, n.Name)
		}
	}
	if updated == 0 || degraded*100 <= max*updated {
		return nil
	}
	sort.Strings(nodes)
	if len(nodes) > maxStopNodes {
		nodes = nodes[:maxStopNodes]
	}
	return &api.RolloutStop{Target: pool.Target, MaxFailedPercent: max, Degraded: degraded, Updated: updated, Nodes: nodes, Since: now}
}
