package fleetview

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"stoker.dev/stoker/api"
)

// WritePoolTable prints pools like `oc get mcp`, with STATE (paused,
// source invalid) as its own last column.
func WritePoolTable(w io.Writer, pools []api.PoolFleet, now time.Time) error {
	return writePoolTable(w, pools, now, false)
}

// WritePoolTableWide is WritePoolTable with the unavailable count, the
// source branch and commit, and the reason of a pool that is not Updated.
func WritePoolTableWide(w io.Writer, pools []api.PoolFleet, now time.Time) error {
	return writePoolTable(w, pools, now, true)
}

func writePoolTable(w io.Writer, pools []api.PoolFleet, now time.Time, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := "NAME\tCONFIG\tUPDATED\tUPDATING\tDEGRADED\tMACHINECOUNT\tREADYMACHINECOUNT\tUPDATEDMACHINECOUNT\tDEGRADEDMACHINECOUNT\tAGE\tSTATE"
	if wide {
		header += "\tUNAVAILABLEMACHINECOUNT\tSOURCE\tREASON"
	}
	fmt.Fprintln(tw, header)
	for _, p := range pools {
		age := "<unknown>"
		if !p.Created.IsZero() {
			age = duration.HumanDuration(now.Sub(p.Created))
		}
		cfg := p.Config
		if cfg == "" {
			cfg = "<none>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s", p.Name, cfg,
			boolWord(p.Updated), boolWord(p.Updating), boolWord(p.Degraded),
			p.MachineCount, p.ReadyMachineCount, p.UpdatedMachineCount, p.DegradedMachineCount, age, PoolState(p))
		if wide {
			fmt.Fprintf(tw, "\t%d\t%s\t%s", p.UnavailableMachineCount, dash(poolSource(p)), dash(oneLine(poolReason(p), 100)))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// PoolState is the STATE cell: "source invalid", "paused" or "-".
func PoolState(p api.PoolFleet) string {
	if p.State == "" && p.Paused {
		return api.PoolStatePaused // written by a hub before states
	}
	return dash(p.State)
}

func poolSource(p api.PoolFleet) string {
	src := p.SourceBranch
	if p.SourceCommit != "" {
		src += "@" + Short(p.SourceCommit)
	}
	return src
}

// poolReason is why a stopped rollout stopped, else the message of the
// first condition that says why the pool is not simply Updated: RenderDegraded or Degraded when true, then
// Updating (paused, source invalid, updating), then Updated when false.
func poolReason(p api.PoolFleet) string {
	if p.RolloutStop != nil {
		return p.RolloutStop.Message() // why nothing moves, before who is degraded
	}
	for _, t := range []string{api.PoolRenderDegraded, api.PoolDegraded} {
		if c := p.PoolCondition(t); c != nil && c.Status == "True" && c.Message != "" {
			return c.Message
		}
	}
	if c := p.PoolCondition(api.PoolUpdating); c != nil && c.Message != "" {
		return c.Message
	}
	if c := p.PoolCondition(api.PoolUpdated); c != nil && c.Status == "False" {
		return c.Message
	}
	return ""
}

// WriteNodeTable prints nodes like `oc get nodes` with Stoker's columns;
// LAST-SEEN is how long ago the node last reported, at now.
func WriteNodeTable(w io.Writer, nodes []api.NodeFleet, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPOOL\tSTATE\tCURRENT\tDESIRED\tLAST-SEEN\tREASON")
	for _, n := range nodes {
		reason := nodeReason(n)
		seen := "<never>"
		if !n.LastReport.IsZero() {
			seen = duration.HumanDuration(now.Sub(n.LastReport))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, dash(n.Pool), dash(string(n.State)),
			dash(n.CurrentConfig), dash(n.DesiredConfig), seen, oneLine(reason, 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Drift findings, one line each, under the table.
	for _, n := range nodes {
		if len(n.Drift) > 0 {
			fmt.Fprintf(w, "\ndrift on %s:\n", n.Name)
		}
		for _, f := range n.Drift {
			what := f.Path
			if what == "" {
				what = f.Unit
			}
			fmt.Fprintf(w, "  %s %s: expected %s, found %s\n", f.Kind, what, dash(oneLine(f.Expected, 80)), dash(oneLine(f.Found, 80)))
		}
	}
	// Failed lifecycle hooks, with the end of their output.
	for _, n := range nodes {
		if h := n.Hook; h != nil {
			fmt.Fprintf(w, "\nhook %s failed on %s (%s): %s\n", h.Hook, n.Name, dash(h.Config), oneLine(h.Error, 120))
			for _, l := range hookTail(h.Output) {
				fmt.Fprintf(w, "  | %s\n", l)
			}
		}
	}
	return nil
}

// hookTailLines is how much of a hook's output tables show; the fleet
// branch's nodes/<node>.yaml has all the agent kept.
const hookTailLines = 10

// hookTail is the last hookTailLines lines of a hook's output, each on
// one line of at most 160 bytes.
func hookTail(out string) []string {
	out = strings.TrimRight(out, "\n")
	if out == "" {
		return nil
	}
	lines := strings.Split(out, "\n")
	if len(lines) > hookTailLines {
		lines = lines[len(lines)-hookTailLines:]
	}
	for i, l := range lines {
		lines[i] = oneLine(l, 160)
	}
	return lines
}

// README renders stoker/fleet's README.md: the pool and node tables
// as Markdown, render errors, and drift, readable in any Git UI.
func README(pools []api.PoolFleet, nodes []api.NodeFleet, now time.Time) []byte {
	var b strings.Builder
	b.WriteString("# Stoker fleet status\n\nGenerated by the Stoker hub; do not edit. ")
	b.WriteString("Desired state is on the `stoker/status` branch, each node's own report on `stoker/reports/<node>`.\n\n")
	b.WriteString("## Pools\n\n| NAME | CONFIG | UPDATED | UPDATING | DEGRADED | STATE | MACHINECOUNT | READYMACHINECOUNT | UPDATEDMACHINECOUNT | DEGRADEDMACHINECOUNT | SOURCE |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range pools {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s | %d | %d | %d | %d | %s |\n", MDEscape(p.Name), dash(p.Config),
			boolWord(p.Updated), boolWord(p.Updating), boolWord(p.Degraded), PoolState(p),
			p.MachineCount, p.ReadyMachineCount, p.UpdatedMachineCount, p.DegradedMachineCount, dash(poolSource(p)))
	}
	var conds []string
	for _, p := range pools {
		for _, t := range api.PoolConditionTypes {
			if c := p.PoolCondition(t); c != nil {
				conds = append(conds, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", MDEscape(p.Name), c.Type, c.Status, c.Reason,
					c.LastTransitionTime.UTC().Format(time.RFC3339), MDEscape(oneLine(c.Message, 200))))
			}
		}
	}
	if len(conds) > 0 {
		b.WriteString("\n## Pool conditions\n\n| POOL | TYPE | STATUS | REASON | LAST TRANSITION | MESSAGE |\n|---|---|---|---|---|---|\n")
		b.WriteString(strings.Join(conds, "\n"))
		b.WriteString("\n")
	}
	var errs []string
	for _, p := range pools {
		for _, e := range p.Errors {
			line := e.String()
			if e.Commit != "" {
				line = Short(e.Commit) + " " + line
			}
			errs = append(errs, fmt.Sprintf("- **%s**: `%s`", p.Name, MDEscape(line)))
		}
	}
	if lines := rolloutLines(pools); len(lines) > 0 {
		b.WriteString("\n## Maintenance windows and holds\n\n")
		for _, l := range lines {
			fmt.Fprintf(&b, "- %s\n", MDEscape(l))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\n## Render errors\n\nThese pools keep their last good render until the source is fixed.\n\n")
		b.WriteString(strings.Join(errs, "\n"))
		b.WriteString("\n")
	}
	b.WriteString("\n## Nodes\n\n| NAME | POOL | STATE | CURRENT | DESIRED | LAST-SEEN | REASON |\n|---|---|---|---|---|---|---|\n")
	for _, n := range nodes {
		reason := n.Reason
		if n.Error != "" {
			reason = n.Error
		}
		if reason == "" {
			reason = n.Waiting
		}
		seen := "never"
		if !n.LastReport.IsZero() {
			seen = n.LastReport.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | `%s` | `%s` | %s | %s |\n", n.Name, dash(n.Pool), dash(string(n.State)),
			dash(n.CurrentConfig), dash(n.DesiredConfig), seen, MDEscape(oneLine(reason, 200)))
	}
	var drift []string
	for _, n := range nodes {
		for _, d := range n.Drift {
			what := d.Path
			if what == "" {
				what = d.Unit
			}
			drift = append(drift, fmt.Sprintf("- **%s**: %s `%s` (expected %s, found %s)", n.Name, d.Kind, what, dash(d.Expected), dash(d.Found)))
		}
	}
	if len(drift) > 0 {
		b.WriteString("\n## Drift\n\n")
		b.WriteString(strings.Join(drift, "\n"))
		b.WriteString("\n")
	}
	heading := false
	for _, n := range nodes {
		h := n.Hook
		if h == nil {
			continue
		}
		if !heading {
			b.WriteString("\n## Failed hooks\n")
			heading = true
		}
		fmt.Fprintf(&b, "\n- **%s**: `%s` (%s): %s\n", n.Name, h.Hook, dash(h.Config), MDEscape(oneLine(h.Error, 200)))
		if tail := hookTail(h.Output); len(tail) > 0 {
			b.WriteString("\n")
			for _, l := range tail {
				b.WriteString("      " + l + "\n") // an indented code block in the list item
			}
		}
	}
	return []byte(b.String())
}

func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Short abbreviates a commit hash to seven characters, as Git does.
func Short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}

// MDEscape escapes s for one cell of a Markdown table.
func MDEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
