package reconciler

import (
	"fmt"
	"sort"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/render"
	"stoker.dev/stoker/reconciler/rollout"
)

// planState is the outcome of the plan step: the desired state to write.
type planState struct {
	// pools: the targets to write (fresh render or last good).
	pools map[string]api.PoolTarget
	// nodes: every node's desired target to write.
	nodes map[string]api.NodeTarget
	steps []rollout.Step
	// rank is each pool's nodes in the planner's order (rollout.Order),
	// published as the pool's rollout order in layout 2.
	rank map[string][]string
	// layout is what stoker/status is written in.
	layout statusLayout
	// fleet rows.
	fleetPools map[string]*api.PoolFleet
	fleetNodes map[string]nodeFleetFile
}

func (h *Hub) plan(rs *renderState, cur *statusTree, prev *fleetTree, reports map[string]*api.Report, inventory []InventoryNode) (*planState, error) {
	now := h.cfg.Now().UTC().Truncate(time.Second)
	ps := &planState{pools: map[string]api.PoolTarget{}, nodes: map[string]api.NodeTarget{}, fleetPools: map[string]*api.PoolFleet{}, fleetNodes: map[string]nodeFleetFile{}, rank: map[string][]string{}}

	// Pools to plan: the default branch's pools when it loaded, else the
	// pools already on stoker/status (the last good render).
	var planPools []rollout.PlanPool
	if rs.pools != nil {
		for _, p := range rs.pools {
			name := p.Object.Name
			target := cur.pools[name] // last good, possibly zero
			if pr, ok := rs.targets[name]; ok {
				target = pr.target
			} else {
				// A pool that failed to render keeps its last good target,
				// but pause and maxUnavailable follow the default branch.
				target = refreshTarget(p.Object, target)
			}
			if target.Rendered != "" {
				ps.pools[name] = target
			}
			pp := rollout.PlanPool{Name: name, Target: target.Rendered, Paused: p.Object.Spec.Paused,
				MaxUnavailable: p.Object.Spec.MaxUnavailable, NodeSelector: p.Object.Spec.NodeSelector}
			if v, ok := p.Object.Annotations[api.MaxFailedPercentAnnotation]; ok {
				if n, err := render.ParseMaxFailedPercent(v); err == nil { // validated with the pool
					pp.MaxFailedPercent = &n
				}
			}
			pp.Window, pp.Now, pp.Policy = poolWindow(p.Object.Annotations), now, rs.policy
			planPools = append(planPools, pp)
		}
	} else {
		// The default branch fails validation: stoker/status stays exactly
		// as it is (nodes keep the last good render, no rollout moves);
		// only stoker/fleet changes, to show the errors.
		for name, t := range cur.pools {
			ps.pools[name] = t
			planPools = append(planPools, rollout.PlanPool{Name: name, Target: t.Rendered, Paused: true})
		}
		sort.Slice(planPools, func(i, j int) bool { return planPools[i].Name < planPools[j].Name })
	}

	// Nodes: union of reports, inventory and nodes already on stoker/status.
	nodes := map[string]*rollout.PlanNode{}
	get := func(name string) *rollout.PlanNode {
		n, ok := nodes[name]
		if !ok {
			n = &rollout.PlanNode{Name: name, Ready: true}
			nodes[name] = n
		}
		return n
	}
	for name, r := range reports {
		n := get(name)
		n.Report = r
		n.Labels = r.Labels
		n.Unreachable = h.unreachable(r, now)
	}
	for _, inv := range inventory {
		n := get(inv.Name)
		n.Labels = inv.Labels
		n.Created = inv.Created
		n.Ready = inv.Ready
	}
	for name := range cur.nodes {
		get(name)
	}
	names := make([]string, 0, len(nodes))
	for name, n := range nodes {
		n.Desired = cur.nodes[name].DesiredConfig
		if n.Created.IsZero() {
			if f, ok := prev.nodes[name]; ok && !f.FirstSeen.IsZero() {
				n.Created = f.FirstSeen
			} else {
				n.Created = now
			}
		}
		names = append(names, name)
	}
	sort.Strings(names)
	h.warnUnknownNodes(rs.policy, nodes)
	list := make([]rollout.PlanNode, 0, len(names))
	for _, name := range names {
		list = append(list, *nodes[name])
	}
	var members rollout.Membership
	if rs.pools != nil {
		var err error
		if members, err = rollout.Assign(planPools, list); err != nil {
			return nil, err
		}
	} else {
		members = rollout.Membership{Pool: map[string]string{}, Errors: map[string]string{}}
		for name, n := range cur.nodes {
			members.Pool[name] = n.Pool
		}
	}
	byPool := map[string][]rollout.PlanNode{}
	for _, n := range list {
		if p, ok := members.Pool[n.Name]; ok {
			byPool[p] = append(byPool[p], n)
		}
	}
	// Success thresholds: a pool whose rollout stopped advances nobody. A
	// frozen default branch keeps every stop as it was.
	stops := map[string]*api.RolloutStop{}
	for i, pp := range planPools {
		stop := prev.pools[pp.Name].RolloutStop
		if rs.pools != nil {
			stop = rollout.Stop(pp, byPool[pp.Name], stop, now)
		}
		if stop != nil {
			stops[pp.Name] = stop
			planPools[i].Stopped = true
		}
	}
	h.windows = map[string]*api.MaintenanceWindow{}
	for _, pp := range planPools {
		setActions(pp, byPool[pp.Name], rs, cur)
		steps, err := rollout.PlanRollout(pp, byPool[pp.Name])
		if err != nil {
			return nil, err
		}
		ps.steps = append(ps.steps, steps...)
		if pp.Window != nil {
			h.windows[pp.Name] = pp.Window
		}
		for _, n := range rollout.Order(pp, byPool[pp.Name]) {
			ps.rank[pp.Name] = append(ps.rank[pp.Name], n.Name)
		}
	}
	advanced := map[string]string{}
	for _, s := range ps.steps {
		advanced[s.Node] = s.To
	}
	// Why nodes behind their pool's target did not advance (held, or
	// waiting for the window), for stoker/fleet.
	waits := map[string]string{}
	for _, pp := range planPools {
		for _, n := range byPool[pp.Name] {
			if _, ok := advanced[n.Name]; !ok {
				if w := waiting(pp, n); w != "" {
					waits[n.Name] = w
				}
			}
		}
	}
	for _, n := range list {
		pool, ok := members.Pool[n.Name]
		desired := n.Desired
		if to, ok := advanced[n.Name]; ok {
			desired = to
		}
		if !ok {
			// No pool (or two): keep whatever it had, never advance it.
			if old, had := cur.nodes[n.Name]; had {
				ps.nodes[n.Name] = old
			}
		} else if desired != "" {
			ps.nodes[n.Name] = api.NodeTarget{Name: n.Name, Pool: pool, DesiredConfig: desired}
		}
	}

	// Fleet rows.
	for _, pp := range planPools {
		// A default branch that fails validation freezes every pool
		// (PlanPool.Paused), but the pool shows what it really is: source
		// invalid, and paused only if it was.
		paused := pp.Paused
		if rs.pools == nil {
			paused = cur.pools[pp.Name].Paused
		}
		pf := &api.PoolFleet{Name: pp.Name, Config: pp.Target, Paused: paused, Created: now}
		if t, ok := ps.pools[pp.Name]; ok {
			pf.SourceBranch, pf.SourceCommit = t.SourceBranch, t.SourceCommit
		}
		if old, ok := prev.pools[pp.Name]; ok && !old.Created.IsZero() {
			pf.Created = old.Created
		}
		pf.Errors = append(pf.Errors, rs.mainErrors...)
		pf.Errors = append(pf.Errors, rs.errors[pp.Name]...)
		members := byPool[pp.Name]
		// Count against the desired state being written now.
		for i := range members {
			members[i].Desired = ps.nodes[members[i].Name].DesiredConfig
		}
		summarizePool(pf, pp.Target, members)
		pf.RolloutStop = stops[pp.Name]
		if pp.Window != nil {
			pf.Window = pp.Window.Status(now)
		}
		for _, n := range members {
			if _, held := pp.Policy.Held(n.Name); held {
				pf.Held = append(pf.Held, n.Name)
			}
		}
		setPoolConditions(pf, prev.pools[pp.Name].Conditions, now,
			poolStatus{sourceInvalid: len(pf.Errors) > 0, frozen: rs.pools == nil}, members)
		pf.RolledOut = rolledOut(pf, prev.pools[pp.Name])
		ps.fleetPools[pp.Name] = pf
	}
	for _, n := range list {
		f := nodeFleetFile{NodeFleet: api.NodeFleet{Name: n.Name, Pool: members.Pool[n.Name], Error: members.Errors[n.Name],
			DesiredConfig: ps.nodes[n.Name].DesiredConfig, Waiting: waits[n.Name]}, FirstSeen: n.Created}
		if n.Report != nil {
			f.State = n.Report.State
			f.CurrentConfig = n.Report.CurrentConfig
			f.Reason = n.Report.Reason
			f.Drift = n.Report.Drift
			f.Hook = n.Report.Hook
			f.LastReport = n.Report.Heartbeat
			if n.Unreachable {
				f.State = api.StateUnreachable
				f.Reason = fmt.Sprintf("no report since %s (unreachable after %s); last reported %s",
					n.Report.Heartbeat.UTC().Format(time.RFC3339), h.cfg.UnreachableAfter, n.Report.State)
				if n.Report.Reason != "" {
					f.Reason += ": " + n.Report.Reason
				}
			}
		}
		notManaged(&f.NodeFleet)
		if _, inv := nodes[n.Name]; inv && !n.Ready && f.Reason == "" {
			f.Reason = "node is NotReady"
		}
		ps.fleetNodes[n.Name] = f
	}
	return ps, nil
}

// rolledOut is the last config every node of the pool finished on: pf's
// when it is Updated now, else the previous one (a fleet written before
// the field existed: its config if it was Updated).
func rolledOut(pf *api.PoolFleet, prev api.PoolFleet) string {
	if pf.Updated {
		return pf.Config
	}
	if prev.RolledOut == "" && prev.Updated {
		return prev.Config
	}
	return prev.RolledOut
}

// summarizePool counts a pool's machines the way `oc get mcp` does.
// members are the pool's nodes with their reports; target is the pool's
// rendered config.
func summarizePool(pf *api.PoolFleet, target string, members []rollout.PlanNode) {
	pf.MachineCount = len(members)
	pf.ReadyMachineCount, pf.UpdatedMachineCount = 0, 0
	pf.UnavailableMachineCount, pf.DegradedMachineCount = 0, 0
	for _, n := range members {
		updated := n.Report != nil && n.Report.State == api.StateDone &&
			n.Report.CurrentConfig == target && n.Desired == target
		if updated {
			pf.UpdatedMachineCount++
		}
		if updated && n.Ready && !n.Unreachable {
			pf.ReadyMachineCount++
		}
		if rollout.Unavailable(n) {
			pf.UnavailableMachineCount++
		}
		if n.Report != nil && n.Report.State == api.StateDegraded {
			pf.DegradedMachineCount++
		}
	}
	pf.Degraded = pf.DegradedMachineCount > 0 || len(pf.Errors) > 0
	pf.Updated = target != "" && pf.UpdatedMachineCount == pf.MachineCount
	pf.Updating = !pf.Updated && !pf.Paused && target != ""
}

func sortedPools(m map[string]*api.PoolFleet) []api.PoolFleet {
	out := make([]api.PoolFleet, 0, len(m))
	for _, p := range m {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
