package review

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/reconciler/render"
)

// RolloutRules are what Stoker adds beyond MCO to when and in which order
// nodes update: each pool's maintenance window, and the holds and order
// of .stoker/rollout.yaml, as HEAD sets them against BASE.
type RolloutRules struct {
	Windows []WindowRule `json:"windows,omitempty"`
	// Held are HEAD's held nodes; Added and Released what changed.
	Held     []string `json:"held,omitempty"`
	Added    []string `json:"holdsAdded,omitempty"`
	Released []string `json:"holdsReleased,omitempty"`
	// Order is HEAD's order; BaseOrder BASE's when it differs.
	Order     string `json:"order"`
	BaseOrder string `json:"baseOrder,omitempty"`
	// Warnings name held or ordered nodes the fleet does not know (only
	// when the diff reads stoker/fleet).
	Warnings []string `json:"warnings,omitempty"`

	policy *api.RolloutPolicy // HEAD's
}

// WindowRule is one pool's maintenance window.
type WindowRule struct {
	Pool string `json:"pool"`
	// Head and Base describe the window ("" = none).
	Head string `json:"head,omitempty"`
	Base string `json:"base,omitempty"`
	// State is HEAD's window at the diff's clock: open until, or when it
	// opens next.
	State string `json:"state,omitempty"`
}

func (r *RolloutRules) empty() bool {
	return r == nil || (len(r.Windows) == 0 && len(r.Held) == 0 && len(r.Released) == 0 && r.BaseOrder == "" && r.Order == (*api.RolloutOrder)(nil).String())
}

// rolloutRules compares both sides' windows and rollout files. HEAD's
// rollout file problems are returned (the hub would refuse HEAD); BASE's
// only make BASE count as having none.
func rolloutRules(baseFS, headFS fs.FS, base, head *render.Repo, now time.Time) (*RolloutRules, api.Problems) {
	headP, ps := api.ReadRolloutPolicy(headFS)
	if len(ps.Errors()) > 0 {
		return nil, ps
	}
	baseP, _ := api.ReadRolloutPolicy(baseFS)
	rules := &RolloutRules{Held: headP.SortedHolds(), Order: orderOf(headP).String(), policy: headP}
	baseHeld := baseP.SortedHolds()
	for _, n := range rules.Held {
		if !slices.Contains(baseHeld, n) {
			rules.Added = append(rules.Added, n)
		}
	}
	for _, n := range baseHeld {
		if !slices.Contains(rules.Held, n) {
			rules.Released = append(rules.Released, n)
		}
	}
	if b := orderOf(baseP).String(); b != rules.Order {
		rules.BaseOrder = b
	}
	windows := map[string]*WindowRule{}
	var names []string
	get := func(pool string) *WindowRule {
		if w, ok := windows[pool]; ok {
			return w
		}
		w := &WindowRule{Pool: pool}
		windows[pool] = w
		names = append(names, pool)
		return w
	}
	for _, p := range head.Pools {
		if w := poolWindow(p.Object); w != nil {
			r := get(p.Object.Name)
			r.Head = w.String()
			r.State = stateLine(w.Status(now))
		}
	}
	if base != nil {
		for _, p := range base.Pools {
			if w := poolWindow(p.Object); w != nil {
				get(p.Object.Name).Base = w.String()
			}
		}
	}
	slices.Sort(names)
	for _, n := range names {
		rules.Windows = append(rules.Windows, *windows[n])
	}
	return rules, nil
}

func poolWindow(p api.MachineConfigPool) *api.MaintenanceWindow {
	w, ps := api.ParseWindow(p.Annotations)
	if len(ps) > 0 {
		return nil
	}
	return w
}

// stateLine is the state part of fleetview.WindowLine ("closed, opens ...").
func stateLine(ws *api.WindowStatus) string {
	l := fleetview.WindowLine(ws)
	if i := strings.LastIndex(l, ": "); i >= 0 {
		return l[i+2:]
	}
	return l
}

func orderOf(p *api.RolloutPolicy) *api.RolloutOrder {
	if p == nil {
		return nil
	}
	return p.Order
}

// poolWindowNote says when a pool's disruptive change may start, for a
// pool whose HEAD has a window that gates its action ("" otherwise).
func poolWindowNote(head *render.Repo, pool string, action api.ActionType, now time.Time) string {
	p := head.Pool(pool)
	if p == nil {
		return ""
	}
	w := poolWindow(p.Object)
	if w == nil || !w.Gates(action) {
		return ""
	}
	st := w.Status(now)
	if st.Open {
		return "the maintenance window is open now: " + stateLine(st)
	}
	return "nodes wait for the maintenance window: " + stateLine(st)
}

func writeRulesText(b *strings.Builder, r *RolloutRules) {
	if r.empty() {
		return
	}
	b.WriteString("\nrollout rules (Stoker extensions, not MCO):\n")
	for _, l := range rulesLines(r) {
		fmt.Fprintf(b, "  %s\n", l)
	}
}

func writeRulesMarkdown(b *strings.Builder, r *RolloutRules) {
	if r.empty() {
		return
	}
	b.WriteString("\n**Rollout rules** (Stoker extensions, not MCO):\n\n")
	for _, l := range rulesLines(r) {
		fmt.Fprintf(b, "- %s\n", fleetview.MDEscape(l))
	}
}

func rulesLines(r *RolloutRules) []string {
	var out []string
	for _, w := range r.Windows {
		switch {
		case w.Head == "":
			out = append(out, fmt.Sprintf("pool %s: maintenance window removed (was %s)", w.Pool, w.Base))
		case w.Base == "":
			out = append(out, fmt.Sprintf("pool %s: maintenance window %s (new); %s", w.Pool, w.Head, w.State))
		case w.Base != w.Head:
			out = append(out, fmt.Sprintf("pool %s: maintenance window %s (was %s); %s", w.Pool, w.Head, w.Base, w.State))
		default:
			out = append(out, fmt.Sprintf("pool %s: maintenance window %s; %s", w.Pool, w.Head, w.State))
		}
	}
	if len(r.Held) > 0 {
		held := make([]string, len(r.Held))
		for i, n := range r.Held {
			held[i] = n
			if slices.Contains(r.Added, n) {
				held[i] += " (new)"
			}
		}
		out = append(out, fmt.Sprintf("held in %s: %s", api.RolloutPolicyFile, strings.Join(held, ", ")))
	}
	if len(r.Released) > 0 {
		out = append(out, fmt.Sprintf("hold released (these nodes update again): %s", strings.Join(r.Released, ", ")))
	}
	if r.BaseOrder != "" {
		out = append(out, fmt.Sprintf("order: %s (was: %s)", r.Order, r.BaseOrder))
	} else if r.Order != (*api.RolloutOrder)(nil).String() {
		out = append(out, "order: "+r.Order)
	}
	return append(out, r.Warnings...)
}
