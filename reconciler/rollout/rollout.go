package rollout

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"stoker.dev/stoker/api"
)

// PlanPool is what the rollout planner needs to know of a pool.
type PlanPool struct {
	Name string
	// Target is the pool's rendered config name; "" when the pool has never
	// rendered (its nodes are then left alone).
	Target         string
	Paused         bool
	MaxUnavailable *intstr.IntOrString
	NodeSelector   *metav1.LabelSelector
	// MaxFailedPercent is the success threshold (nil: none); see Stop.
	MaxFailedPercent *int
	// Stopped: the rollout stopped at its success threshold (Stop's
	// verdict); nobody advances, as when paused.
	Stopped bool
	// Window, when set, lets the updates it gates (disruptive ones, or all)
	// start only while it is open at Now; updates in flight finish.
	Window *api.MaintenanceWindow
	// Now is the clock the window is read at.
	Now time.Time
	// Policy is .stoker/rollout.yaml: held nodes never advance, and its
	// order comes before zone-then-age. Nil means neither.
	Policy *api.RolloutPolicy
}

// PlanNode is what the rollout planner needs to know of a node.
type PlanNode struct {
	Name   string
	Labels map[string]string
	// Created orders rollouts oldest first: the Node's creationTimestamp in
	// Kubernetes mode, else when the hub first saw the node.
	Created time.Time
	// Ready is false for a NotReady Kubernetes node (unavailable).
	Ready bool
	// Unreachable is the hub's verdict from the clock: the node's last
	// report or heartbeat is too old (unavailable, like NotReady).
	Unreachable bool
	// Desired is the node's desiredConfig on stoker/status now ("" if none).
	Desired string
	// Report is the node's last report; nil when it has never reported.
	Report *api.Report
	// Action is the strongest action of moving this node from Desired to
	// the pool's target ("" = unknown, counted as disruptive); only a pool
	// with a Window reads it.
	Action api.ActionType
}

// Membership is the outcome of matching nodes to pools.
type Membership struct {
	// Pool maps node name to its one pool.
	Pool map[string]string
	// Errors maps node name to why it has no pool (two custom pools).
	Errors map[string]string
}

// Assign matches every node to exactly one pool with MCO's rules: a custom
// pool wins over worker, master wins over a custom pool, two matching
// custom pools is an error for that node, which then belongs to none.
func Assign(pools []PlanPool, nodes []PlanNode) (Membership, error) {
	m := Membership{Pool: map[string]string{}, Errors: map[string]string{}}
	selectors := make([]labels.Selector, len(pools))
	for i, p := range pools {
		if p.NodeSelector == nil {
			selectors[i] = labels.Nothing()
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(p.NodeSelector)
		if err != nil {
			return m, fmt.Errorf("pool %s: spec.nodeSelector: %w", p.Name, err)
		}
		selectors[i] = s
	}
	for _, n := range nodes {
		var master, worker bool
		var custom []string
		set := labels.Set(n.Labels)
		for i, p := range pools {
			if !selectors[i].Matches(set) {
				continue
			}
			switch p.Name {
			case api.PoolMaster:
				master = true
			case api.PoolWorker:
				worker = true
			default:
				custom = append(custom, p.Name)
			}
		}
		switch {
		case master:
			m.Pool[n.Name] = api.PoolMaster
		case len(custom) > 1:
			sort.Strings(custom)
			m.Errors[n.Name] = fmt.Sprintf("node matches more than one custom pool: %s", strings.Join(custom, ", "))
		case len(custom) == 1:
			m.Pool[n.Name] = custom[0]
		case worker:
			m.Pool[n.Name] = api.PoolWorker
		}
	}
	return m, nil
}

// MaxUnavailable resolves a pool's maxUnavailable (int or percent; default
// 1) against its machine count, rounded down and at least 1, as MCO does.
func MaxUnavailable(v *intstr.IntOrString, machines int) (int, error) {
	if v == nil {
		return 1, nil
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, machines, false)
	if err != nil {
		return 0, fmt.Errorf("maxUnavailable %q: %w", v.String(), err)
	}
	if n < 1 {
		n = 1
	}
	return n, nil
}

// Unavailable reports whether a node counts against its pool's
// maxUnavailable: not Ready, Unreachable, no report, not Done, or not yet
// at the config it was told to run. As MCO's getUnavailableMachines
// (pkg/controller/node/status.go, LayeredNodeState.IsUnavailableForUpdate)
// counts a NotReady node, a node whose agent went silent uses capacity: a
// rollout does not take more nodes down while it cannot tell.
func Unavailable(n PlanNode) bool {
	if !n.Ready || n.Unreachable || n.Report == nil {
		return true
	}
	if n.Report.State != api.StateDone {
		return true
	}
	return n.Desired != "" && n.Report.CurrentConfig != n.Desired
}

// Step is one node advanced to a new desiredConfig.
type Step struct {
	Node, Pool, From, To string
}

// PlanRollout decides which nodes get the pool's target now. A paused or
// stopped pool, or one without a target, advances nobody. Capacity is
// maxUnavailable minus the nodes unavailable now; candidates are ordered
// by the repo's order (if any), then zone (alphabetical, zoneless last),
// then oldest first, then name. A candidate that is already
// unavailable costs no capacity (it cannot get less available), so a fix
// reaches a Degraded node even when the pool has no room; the invariant is
// that no commit raises the pool's unavailable count above maxUnavailable.
// A node that never reported is not "already unavailable" in that sense:
// its agent may not run yet, and advancing many such nodes at once would
// disrupt them all together when their agents start. A node Blocked (held,
// or its update gated by the pool's closed window) is skipped and costs
// nothing; one already moving to the target is not a candidate, so a
// window that closes lets updates in flight finish.
func PlanRollout(pool PlanPool, members []PlanNode) ([]Step, error) {
	if pool.Paused || pool.Stopped || pool.Target == "" {
		return nil, nil
	}
	max, err := MaxUnavailable(pool.MaxUnavailable, len(members))
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", pool.Name, err)
	}
	unavailable := 0
	var candidates []PlanNode
	for _, n := range members {
		if Unavailable(n) {
			unavailable++
		}
		if n.Desired != pool.Target {
			candidates = append(candidates, n)
		}
	}
	candidates = Order(pool, candidates)
	capacity := max - unavailable
	var steps []Step
	for _, n := range candidates {
		if Blocked(pool, n) != "" {
			continue
		}
		if !inFlight(n) {
			if capacity <= 0 {
				continue
			}
			capacity--
		}
		steps = append(steps, Step{Node: n.Name, Pool: pool.Name, From: n.Desired, To: pool.Target})
	}
	return steps, nil
}

// inFlight reports whether the node's own agent says it is changing or
// failing already, so a new target does not make it less available.
func inFlight(n PlanNode) bool {
	if n.Report == nil {
		return false
	}
	return n.Report.State != api.StateDone || (n.Desired != "" && n.Report.CurrentConfig != n.Desired)
}

// Blocked says why node n may not start moving to the pool's target now
// ("" = it may): it is held in .stoker/rollout.yaml, or the pool's window
// is closed and gates the update.
func Blocked(pool PlanPool, n PlanNode) string {
	if h, ok := pool.Policy.Held(n.Name); ok {
		msg := "held in " + api.RolloutPolicyFile
		if h.Reason != "" {
			msg += ": " + h.Reason
		}
		return msg
	}
	if w := pool.Window; w != nil && w.Gates(n.Action) {
		if st := w.State(pool.Now); !st.Open {
			msg := "waiting for the maintenance window"
			if !st.Opens.IsZero() {
				msg += " (opens " + st.Opens.Format(time.RFC3339) + ")"
			}
			return msg
		}
	}
	return ""
}

// Order returns nodes in the order a rollout takes them: the repo's
// order (.stoker/rollout.yaml) when it has one, then by zone (alphabetical,
// zoneless last), then oldest first, then name. PlanRollout advances
// candidates in this order, and the hub publishes it as the pool's rollout
// order on stoker/status (layout 2), so that a step that follows it only
// moves the pool's cursor.
func Order(pool PlanPool, nodes []PlanNode) []PlanNode {
	out := append([]PlanNode(nil), nodes...)
	sort.SliceStable(out, func(i, j int) bool { return rolloutLess(pool.Policy, out[i], out[j]) })
	return out
}

func rolloutLess(p *api.RolloutPolicy, a, b PlanNode) bool {
	if p != nil && p.Order != nil {
		if c := orderCompare(p.Order, a, b); c != 0 {
			return c < 0
		}
	}
	za, zb := a.Labels[api.ZoneLabel], b.Labels[api.ZoneLabel]
	if za != zb {
		if za == "" || zb == "" {
			return zb == ""
		}
		return za < zb
	}
	if !a.Created.Equal(b.Created) {
		if a.Created.IsZero() || b.Created.IsZero() {
			return b.Created.IsZero()
		}
		return a.Created.Before(b.Created)
	}
	return a.Name < b.Name
}

// orderCompare compares two nodes by the repo's rollout order: listed
// nodes (or listed label values) first, in list order; without Values, by
// label value ascending, numbers numerically; the rest after, equal.
func orderCompare(o *api.RolloutOrder, a, b PlanNode) int {
	if len(o.Nodes) > 0 {
		return cmp.Compare(listRank(o.Nodes, a.Name), listRank(o.Nodes, b.Name))
	}
	va, oka := a.Labels[o.Label]
	vb, okb := b.Labels[o.Label]
	if len(o.Values) > 0 {
		return cmp.Compare(listRank(o.Values, va, oka), listRank(o.Values, vb, okb))
	}
	switch {
	case oka != okb:
		if oka {
			return -1
		}
		return 1
	case !oka || va == vb:
		return 0
	}
	na, ea := strconv.ParseInt(va, 10, 64)
	nb, eb := strconv.ParseInt(vb, 10, 64)
	if ea == nil && eb == nil {
		return cmp.Compare(na, nb)
	}
	return strings.Compare(va, vb)
}

// listRank is v's index in list, or len(list) when absent (or not set).
func listRank(list []string, v string, set ...bool) int {
	if len(set) == 0 || set[0] {
		if i := slices.Index(list, v); i >= 0 {
			return i
		}
	}
	return len(list)
}
