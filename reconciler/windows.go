package reconciler

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/rollout"
)

// poolWindow is the pool's maintenance window (validated with the pool,
// so a parse problem here means none).
func poolWindow(annotations map[string]string) *api.MaintenanceWindow {
	w, ps := api.ParseWindow(annotations)
	if len(ps) > 0 {
		return nil
	}
	return w
}

// setActions fills each member's Action: the strongest action of moving
// it from its desiredConfig to the pool's target, as `stoker diff` and the
// commit messages compute it, so the pool's window knows which updates
// are disruptive. Only pools with a window need it. A node without a
// desired config, or whose configs cannot be read, stays "" (disruptive).
func setActions(pp rollout.PlanPool, members []rollout.PlanNode, rs *renderState, cur *statusTree) {
	if pp.Window == nil || pp.Target == "" {
		return
	}
	var to *api.Rendered
	policy := cur.pools[pp.Name].Disruption
	if pr, ok := rs.targets[pp.Name]; ok && pr.target.Rendered == pp.Target {
		to, policy = pr.rendered, pr.policy
	} else if r, err := api.ParseRendered(cur.rendered[pp.Target]); err == nil {
		to = r
	}
	if to == nil {
		return
	}
	actions := map[string]api.ActionType{}
	for i, n := range members {
		if n.Desired == "" || n.Desired == pp.Target {
			continue
		}
		a, ok := actions[n.Desired]
		if !ok {
			if from, err := api.ParseRendered(cur.rendered[n.Desired]); err == nil {
				a = api.PlanChanges(from, to, policy).Action
			}
			actions[n.Desired] = a
		}
		members[i].Action = a
	}
}

// windowKey names every pool's window state at now, so a window opening
// or closing is a change to reconcile even when no ref moved.
func (h *Hub) windowKey(now time.Time) string {
	names := make([]string, 0, len(h.windows))
	for name := range h.windows {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		st := h.windows[name].State(now)
		fmt.Fprintf(&b, "%s=%v@%d,", name, st.Open, st.Opens.Unix())
	}
	return b.String()
}

// waiting says, for a node whose desired config is behind its pool's
// target, why the planner holds it back ("" when it does not).
func waiting(pp rollout.PlanPool, n rollout.PlanNode) string {
	if pp.Target == "" || n.Desired == pp.Target || pp.Paused || pp.Stopped {
		return ""
	}
	return rollout.Blocked(pp, n)
}

// warnUnknownNodes logs held or ordered node names the fleet does not
// know: warnings, not errors (a node may not have joined yet).
func (h *Hub) warnUnknownNodes(p *api.RolloutPolicy, nodes map[string]*rollout.PlanNode) {
	for _, w := range p.UnknownNodes(func(n string) bool { _, ok := nodes[n]; return ok }) {
		h.cfg.Log.WithFields(logrus.Fields{"path": w.File}).Warn(w.String())
	}
}
