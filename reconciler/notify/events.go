package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"stoker.dev/stoker/api"
)

// maxMessage bounds an event's message (the rest is cut), so a payload
// stays small whatever a node reports.
const maxMessage = 2048

// Event is one notification, and the JSON body a webhook receiver gets.
type Event struct {
	// ID is the same for the same transition, whoever sends it: a
	// receiver may drop an ID it has seen.
	ID   string        `json:"id"`
	Type api.EventType `json:"type"`
	Time time.Time     `json:"time"`
	// Pools the event is about (one, or every pool a render error hits).
	Pools []string `json:"pools,omitempty"`
	Node  string   `json:"node,omitempty"`
	// Config is the rendered config the event is about.
	Config string `json:"config,omitempty"`
	// Commit is the config-repo commit the event is about, when known.
	Commit string `json:"commit,omitempty"`
	// State and Reason are the node's, for node events.
	State  api.NodeState `json:"state,omitempty"`
	Reason string        `json:"reason,omitempty"`
	// Message is one line for people.
	Message string `json:"message"`
	// FleetCommit is the stoker/fleet commit that recorded the transition.
	FleetCommit string `json:"fleetCommit,omitempty"`
}

// Fleet is the part of a stoker/fleet tree events are derived from.
type Fleet struct {
	Pools map[string]api.PoolFleet
	Nodes map[string]api.NodeFleet
}

// Derive returns the events of the transition from prev to next, in a
// stable order. Each transition yields its event once: the hub derives
// them only after it pushed next over prev (compare-and-swap, so one hub
// wins), and after a restart prev is read back from Git.
func Derive(prev, next Fleet, now time.Time, fleetCommit string) []Event {
	var out []Event
	for _, name := range sortedKeys(next.Pools) {
		p := next.Pools[name]
		old, had := prev.Pools[name]
		if p.Config != "" && p.Config != old.Config && !(!had && p.Updated) {
			out = append(out, Event{Type: api.EventRolloutStarted, Pools: []string{name}, Config: p.Config, Commit: p.SourceCommit,
				Message: fmt.Sprintf("pool %s: rollout of %s (%s) started: %d of %d nodes updated", name, p.Config, source(p), p.UpdatedMachineCount, p.MachineCount)})
		}
		if had && p.RolledOut != "" && p.RolledOut != rolledOut(old) {
			out = append(out, Event{Type: api.EventRolloutFinished, Pools: []string{name}, Config: p.RolledOut, Commit: p.SourceCommit,
				Message: fmt.Sprintf("pool %s: rollout of %s finished: %d of %d nodes updated", name, p.RolledOut, p.UpdatedMachineCount, p.MachineCount)})
		}
		if s := p.RolloutStop; s != nil && (old.RolloutStop == nil || old.RolloutStop.Target != s.Target || !old.RolloutStop.Since.Equal(s.Since)) {
			out = append(out, Event{Type: api.EventRolloutStopped, Pools: []string{name}, Config: s.Target, Commit: p.SourceCommit,
				Message: fmt.Sprintf("pool %s: %s", name, s.Message())})
		}
	}
	// Render errors: one event per distinct failure, naming every pool it
	// hits (a failing default branch hits them all).
	type failure struct {
		pools  []string
		commit string
		msg    string
	}
	var failures []*failure
	byKey := map[string]*failure{}
	for _, name := range sortedKeys(next.Pools) {
		p := next.Pools[name]
		k := errorsKey(p.Errors)
		if k == "" || k == errorsKey(prev.Pools[name].Errors) {
			continue
		}
		f, ok := byKey[k]
		if !ok {
			msg := p.Errors[0].String()
			if len(p.Errors) > 1 {
				msg = fmt.Sprintf("%s (and %d more)", msg, len(p.Errors)-1)
			}
			f = &failure{commit: p.Errors[0].Commit, msg: msg}
			byKey[k] = f
			failures = append(failures, f)
		}
		f.pools = append(f.pools, name)
	}
	for _, f := range failures {
		out = append(out, Event{Type: api.EventRenderFailed, Pools: f.pools, Commit: f.commit,
			Message: fmt.Sprintf("render of %s failed at %s; the pools keep their last good render: %s", strings.Join(f.pools, ", "), short(f.commit), f.msg)})
	}
	for _, name := range sortedKeys(next.Nodes) {
		n := next.Nodes[name]
		if n.State == prev.Nodes[name].State {
			continue
		}
		var t api.EventType
		switch n.State {
		case api.StateDegraded:
			t = api.EventNodeDegraded
		case api.StateUnreachable:
			t = api.EventNodeUnreachable
		default:
			continue
		}
		var pools []string
		if n.Pool != "" {
			pools = []string{n.Pool}
		}
		msg := fmt.Sprintf("node %s is %s", name, n.State)
		if n.Pool != "" {
			msg = fmt.Sprintf("node %s (pool %s) is %s", name, n.Pool, n.State)
		}
		if n.Reason != "" {
			msg += ": " + n.Reason
		}
		if len(n.Drift) > 0 {
			msg += fmt.Sprintf(" (%d drift finding(s))", len(n.Drift))
		}
		out = append(out, Event{Type: t, Pools: pools, Node: name, Config: n.DesiredConfig, State: n.State, Reason: n.Reason, Message: msg})
	}
	for i := range out {
		e := &out[i]
		e.Time, e.FleetCommit = now, fleetCommit
		e.Message = cut(e.Message, maxMessage)
		e.Reason = cut(e.Reason, maxMessage)
		sum := sha256.Sum256([]byte(strings.Join([]string{string(e.Type), strings.Join(e.Pools, ","), e.Node, e.Config, fleetCommit}, "\x00")))
		e.ID = hex.EncodeToString(sum[:8])
	}
	return out
}

// rolledOut is a pool's last finished rollout, for a fleet written before
// PoolFleet.RolledOut existed too.
func rolledOut(p api.PoolFleet) string {
	if p.RolledOut == "" && p.Updated {
		return p.Config
	}
	return p.RolledOut
}

func errorsKey(ps []api.Problem) string {
	if len(ps) == 0 {
		return ""
	}
	return fmt.Sprintf("%s|%d|%s", ps[0].Commit, len(ps), ps[0].String())
}

func source(p api.PoolFleet) string {
	if p.SourceBranch == "" {
		return "last good render"
	}
	return p.SourceBranch + "@" + short(p.SourceCommit)
}

func short(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
