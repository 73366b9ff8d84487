package fleetview

import (
	"fmt"
	"strings"
	"time"

	"stoker.dev/stoker/api"
)

// WindowLine says a pool's maintenance window and whether it is open, e.g.
// `"0 2 * * 6" for 2h0m0s (Europe/Berlin), disruptive updates: closed,
// opens 2026-03-14T02:00:00+01:00`; "" when the pool has none.
func WindowLine(ws *api.WindowStatus) string {
	if ws == nil {
		return ""
	}
	scope := "disruptive updates"
	if ws.AppliesTo == api.WindowAll {
		scope = "all updates"
	}
	s := fmt.Sprintf("%q for %s (%s), %s: ", ws.Schedule, ws.Duration, ws.TimeZone, scope)
	if ws.Open {
		s += "open"
		if ws.Closes != nil {
			s += " until " + ws.Closes.Format(time.RFC3339)
		}
		if ws.Opens != nil {
			s += ", next opens " + ws.Opens.Format(time.RFC3339)
		}
		return s
	}
	s += "closed"
	if ws.Opens != nil {
		s += ", opens " + ws.Opens.Format(time.RFC3339)
	} else {
		s += ", never opens again"
	}
	return s
}

// rolloutLines are the pools' windows and holds, one line each, for
// `stoker status` and the fleet README.
func rolloutLines(pools []api.PoolFleet) []string {
	var out []string
	for _, p := range pools {
		if l := WindowLine(p.Window); l != "" {
			out = append(out, fmt.Sprintf("pool %s: maintenance window %s", p.Name, l))
		}
		if len(p.Held) > 0 {
			out = append(out, fmt.Sprintf("pool %s: held in %s: %s", p.Name, api.RolloutPolicyFile, strings.Join(p.Held, ", ")))
		}
	}
	return out
}

// nodeReason is the REASON cell: the hub's membership error, else the
// agent's reason, else why the hub holds the node back, else drift.
func nodeReason(n api.NodeFleet) string {
	switch {
	case n.Error != "":
		return n.Error
	case n.Reason != "":
		return n.Reason
	case n.Waiting != "":
		return n.Waiting
	case len(n.Drift) > 0:
		return fmt.Sprintf("%d drift finding(s)", len(n.Drift))
	}
	return ""
}
