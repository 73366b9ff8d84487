package reconciler

import (
	"fmt"
	"sort"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
)

// Status layouts the hub may be told to write (HubConfig.StatusLayout).
const (
	// StatusLayoutAuto writes layout 2 once every agent that reports (and
	// is not Unreachable) says it reads it; until then, and while no agent
	// reports, layout 1 with layout 2's files beside nodes/, so both kinds
	// of agent read their target and the switch costs no new order.
	StatusLayoutAuto = 0
	// StatusLayout1 writes layout 1 only (nodes/), as hubs before layout 2.
	StatusLayout1 = api.StatusLayoutV1
	// StatusLayout2 writes layout 2 only, whatever the agents report.
	StatusLayout2 = api.StatusLayoutV2
)

// ParseStatusLayout reads --status-layout: "auto" or "" (StatusLayoutAuto),
// "1" or "2".
func ParseStatusLayout(s string) (int, error) {
	switch s {
	case "", "auto":
		return StatusLayoutAuto, nil
	case "1":
		return StatusLayout1, nil
	case "2":
		return StatusLayout2, nil
	}
	return 0, fmt.Errorf("%q is not a stoker/status layout (want auto, 1 or 2)", s)
}

// statusLayout is the layout the next stoker/status commit is in and
// whether layout 2's files go beside layout 1's nodes/.
type statusLayout struct {
	version  int
	rollouts bool
}

// chooseStatusLayout applies HubConfig.StatusLayout to the agents' reports
// (infos by node: agent.yaml; nil for an agent that predates it).
func (h *Hub) chooseStatusLayout(reports map[string]*api.Report, infos map[string]*api.AgentInfo, unreachable func(*api.Report) bool) statusLayout {
	switch h.cfg.StatusLayout {
	case StatusLayout1:
		return statusLayout{version: api.StatusLayoutV1}
	case StatusLayout2:
		return statusLayout{version: api.StatusLayoutV2, rollouts: true}
	}
	live := 0
	for node, r := range reports {
		if unreachable(r) {
			// It says what it reads when it comes back; an agent that
			// cannot read layout 2 then reports, and layout 1 returns.
			continue
		}
		live++
		if !infos[node].ReadsStatusLayout(r, api.StatusLayoutV2) {
			return statusLayout{version: api.StatusLayoutV1, rollouts: true}
		}
	}
	if live == 0 {
		return statusLayout{version: api.StatusLayoutV1, rollouts: true}
	}
	return statusLayout{version: api.StatusLayoutV2, rollouts: true}
}

// encodeRollouts writes every node's target (nodes) as layout 2's per-pool
// orders and cursors. targets are the pools' rendered targets, rank the
// planner's order of each pool's nodes (rollout.Order), prev what is on
// stoker/status now. An order is kept while its target is the pool's and
// a cursor with at most api.HubRolloutExceptions exceptions describes the
// pool; otherwise a new order is written: the nodes at the target first,
// then the others, each group in the planner's order. Ranked nodes without
// a target yet are in the order too (None), so that a pool's first
// rollout also advances only its cursor.
func encodeRollouts(nodes map[string]api.NodeTarget, targets map[string]string, rank map[string][]string, prev map[string]*api.PoolRollout) map[string]*api.PoolRollout {
	desired := map[string]map[string]string{}
	for name, n := range nodes {
		if n.DesiredConfig == "" || n.Pool == "" {
			continue
		}
		if desired[n.Pool] == nil {
			desired[n.Pool] = map[string]string{}
		}
		desired[n.Pool][name] = n.DesiredConfig
	}
	out := map[string]*api.PoolRollout{}
	for pool, d := range desired {
		target := targets[pool]
		if p := prev[pool]; p != nil && p.Order.Target == target {
			if c, ok := advanceCursor(p.Order, d); ok {
				out[pool] = &api.PoolRollout{Order: p.Order, Cursor: c}
				continue
			}
		}
		out[pool] = newOrder(pool, target, d, rank[pool])
	}
	return out
}

// advanceCursor finds the cursor over order that describes desired with
// the fewest exceptions; ok is false when that is more than
// api.HubRolloutExceptions.
func advanceCursor(order api.PoolOrder, desired map[string]string) (api.PoolCursor, bool) {
	c := api.PoolCursor{Pool: order.Pool, Target: order.Target}
	listed := make(map[string]bool, len(order.Nodes))
	// cost(k): exceptions with the first k nodes advanced.
	cost := 0
	for i, e := range order.Nodes {
		listed[e.Name] = true
		if desired[e.Name] != order.EntryFrom(i) {
			cost++
		}
	}
	best, bestK := cost, 0
	for k, e := range order.Nodes {
		d := desired[e.Name]
		if d != order.Target {
			cost++
		}
		if d != order.EntryFrom(k) {
			cost--
		}
		if cost <= best {
			best, bestK = cost, k+1
		}
	}
	unlisted := 0
	for name := range desired {
		if !listed[name] {
			unlisted++
		}
	}
	if best+unlisted > api.HubRolloutExceptions {
		return c, false
	}
	c.Advanced = bestK
	except := map[string]string{}
	for i, e := range order.Nodes {
		want := order.EntryFrom(i)
		if i < bestK {
			want = order.Target
		}
		if d := desired[e.Name]; d != want {
			except[e.Name] = d
		}
	}
	for name, d := range desired {
		if !listed[name] {
			except[name] = d
		}
	}
	if len(except) > 0 {
		c.Except = except
	}
	return c, true
}

// newOrder is a fresh order for pool: its ranked nodes and those with a
// target, the ones at target first, then the rest, each group in the
// planner's rank (nodes it does not rank last, by name).
func newOrder(pool, target string, desired map[string]string, rank []string) *api.PoolRollout {
	names := make([]string, 0, len(rank))
	seen := map[string]bool{}
	for _, n := range rank {
		if !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range desired {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)
	at := func(n string) bool { return target != "" && desired[n] == target }
	sort.SliceStable(names, func(i, j int) bool { return at(names[i]) && !at(names[j]) })
	// The most common config before the rollout ("" none) is the order's
	// From.
	count := map[string]int{}
	for _, n := range names {
		if !at(n) {
			count[desired[n]]++
		}
	}
	common, most := "", -1
	for d, c := range count {
		if c > most || (c == most && d < common) {
			common, most = d, c
		}
	}
	r := &api.PoolRollout{Order: api.PoolOrder{Pool: pool, Target: target, From: common},
		Cursor: api.PoolCursor{Pool: pool, Target: target}}
	for _, n := range names {
		e := api.OrderEntry{Name: n}
		switch d := desired[n]; {
		case at(n):
			r.Cursor.Advanced++
		case d == common:
		case d == "":
			e.None = true
		default:
			e.From = d
		}
		r.Order.Nodes = append(r.Order.Nodes, e)
	}
	return r
}

// rolloutFiles encodes rollouts as stoker/status files.
func rolloutFiles(rollouts map[string]*api.PoolRollout, files map[string][]byte) error {
	for pool, r := range rollouts {
		order, err := yaml.Marshal(r.Order)
		if err != nil {
			return fmt.Errorf("encode %s: %w", api.RolloutOrderFile(pool), err)
		}
		cursor, err := yaml.Marshal(r.Cursor)
		if err != nil {
			return fmt.Errorf("encode %s: %w", api.RolloutCursorFile(pool), err)
		}
		files[api.RolloutOrderFile(pool)] = order
		files[api.RolloutCursorFile(pool)] = cursor
	}
	return nil
}
