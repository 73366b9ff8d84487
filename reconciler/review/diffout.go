package review

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"

	"stoker.dev/stoker/reconciler/fleetview"
)

// defaultMaxDiffBytes caps each change's printed diff.
const defaultMaxDiffBytes = 8 << 10

// WriteDiff prints rep as text (default), markdown (a pull-request
// comment, details collapsed) or json. Each change's unified diff is cut at
// maxDiff bytes (0: 8 KiB).
func WriteDiff(w io.Writer, rep *DiffReport, format string, maxDiff int) error {
	if maxDiff <= 0 {
		maxDiff = defaultMaxDiffBytes
	}
	switch format {
	case "", "text":
		return writeDiffText(w, rep, maxDiff)
	case "markdown", "md":
		return writeDiffMarkdown(w, rep, maxDiff)
	case "json":
		out := *rep
		out.Pools = append([]PoolDiff{}, rep.Pools...)
		for i := range out.Pools {
			p := out.Pools[i]
			p.Changes = append([]ChangeDiff(nil), p.Changes...)
			for j := range p.Changes {
				p.Changes[j].Diff = capDiff(p.Changes[j].Diff, maxDiff)
			}
			if p.Changes == nil {
				p.Changes = []ChangeDiff{}
			}
			out.Pools[i] = p
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	return fmt.Errorf("unknown output format %q (want text, markdown or json)", format)
}

func headline(rep *DiffReport) string {
	switch n := len(rep.Pools); n {
	case 0:
		return "no pool's rendered config changes"
	case 1:
		return fmt.Sprintf("1 pool changes; action: %s", rep.Action)
	default:
		return fmt.Sprintf("%d pools change; strongest action: %s", n, rep.Action)
	}
}

func changeTitle(c ChangeDiff) string {
	what := c.Path
	if what == "" {
		what = c.Name
	}
	if what == "" {
		return fmt.Sprintf("%s %s", c.Kind, c.Op)
	}
	return fmt.Sprintf("%s %s %s", c.Kind, what, c.Op)
}

func fromName(s string) string {
	if s == "" {
		return "(new pool)"
	}
	return s
}

func toName(s string) string {
	if s == "" {
		return "(pool removed)"
	}
	return s
}

func writeDiffText(w io.Writer, rep *DiffReport, maxDiff int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "stoker diff %s %s\n", rep.Base, rep.Head)
	if rep.Signature != nil {
		fmt.Fprintf(&b, "signature: %s\n", rep.Signature)
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(&b, "\n%s has %s; nothing renders:\n", rep.Head, plural(len(rep.Errors), "error", "errors"))
		for _, p := range rep.Errors {
			fmt.Fprintf(&b, "  %s\n", p.String())
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if len(rep.Errors) == 0 {
		fmt.Fprintf(&b, "%s\n", headline(rep))
	}
	for _, p := range rep.Pools {
		fmt.Fprintf(&b, "\npool %s: %s → %s\n", p.Name, fromName(p.From), toName(p.To))
		fmt.Fprintf(&b, "  action: %s\n", p.Action)
		if p.Rollout != nil {
			fmt.Fprintf(&b, "  nodes:  %s\n", p.Rollout.Summary)
		}
		if p.Window != "" {
			fmt.Fprintf(&b, "  window: %s\n", p.Window)
		}
		for _, c := range p.Changes {
			fmt.Fprintf(&b, "  %s: %s\n", changeTitle(c), c.Actions)
			fmt.Fprintf(&b, "      why: %s\n", c.Reason)
			for _, d := range c.Details {
				fmt.Fprintf(&b, "      %s\n", d)
			}
			if d := capDiff(c.Diff, maxDiff); d != "" {
				for _, line := range strings.SplitAfter(strings.TrimSuffix(d, "\n"), "\n") {
					fmt.Fprintf(&b, "      %s", strings.TrimSuffix(line, "\n")+"\n")
				}
			}
		}
	}
	writeRulesText(&b, rep.Rules)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeDiffMarkdown(w io.Writer, rep *DiffReport, maxDiff int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### Stoker: rendered diff `%s` → `%s`\n\n", rep.Base, rep.Head)
	if s := rep.Signature; s != nil && s.Verified {
		fmt.Fprintf(&b, ":lock: Signature %s\n\n", strings.ReplaceAll(s.String(), "`", "'"))
	} else if s != nil {
		fmt.Fprintf(&b, ":warning: Signature **%s**\n\n", strings.ReplaceAll(s.String(), "`", "'"))
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(&b, "**:x: `%s` does not validate (%s); nothing renders:**\n\n", rep.Head, plural(len(rep.Errors), "error", "errors"))
		for _, p := range rep.Errors {
			fmt.Fprintf(&b, "- `%s`\n", strings.ReplaceAll(p.String(), "`", "'"))
		}
		b.WriteString("\n")
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "> %s\n\n", n)
	}
	if len(rep.Errors) == 0 {
		fmt.Fprintf(&b, "**%s**\n", headline(rep))
	}
	if len(rep.Pools) > 0 {
		withNodes := false
		for _, p := range rep.Pools {
			withNodes = withNodes || p.Rollout != nil
		}
		b.WriteString("\n| Pool | Action | Rendered |")
		if withNodes {
			b.WriteString(" Nodes |")
		}
		b.WriteString("\n|---|---|---|")
		if withNodes {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, p := range rep.Pools {
			fmt.Fprintf(&b, "| %s | **%s** | `%s` → `%s` |", fleetview.MDEscape(p.Name), p.Action, fromName(p.From), toName(p.To))
			if withNodes {
				s := "-"
				if p.Rollout != nil {
					s = fleetview.MDEscape(p.Rollout.Summary)
				}
				fmt.Fprintf(&b, " %s |", s)
			}
			b.WriteString("\n")
		}
	}
	for _, p := range rep.Pools {
		if p.Window != "" {
			fmt.Fprintf(&b, "\n:hourglass: **%s**: %s\n", fleetview.MDEscape(p.Name), fleetview.MDEscape(p.Window))
		}
	}
	writeRulesMarkdown(&b, rep.Rules)
	for _, p := range rep.Pools {
		fmt.Fprintf(&b, "\n<details>\n<summary><b>%s</b>: %s, %s</summary>\n\n",
			html.EscapeString(p.Name), p.Action, plural(len(p.Changes), "change", "changes"))
		if len(p.Changes) > 0 {
			b.WriteString("| Change | Action | Why |\n|---|---|---|\n")
			for _, c := range p.Changes {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", fleetview.MDEscape(mdChange(c)), fleetview.MDEscape(c.Actions), fleetview.MDEscape(c.Reason))
			}
		}
		for _, c := range p.Changes {
			d := capDiff(c.Diff, maxDiff)
			if d == "" && len(c.Details) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n%s\n", mdChange(c))
			if len(c.Details) > 0 {
				b.WriteString("\n")
				for _, line := range c.Details {
					fmt.Fprintf(&b, "- `%s`\n", strings.ReplaceAll(line, "`", "'"))
				}
			}
			if d != "" {
				fence := codeFence(d)
				fmt.Fprintf(&b, "\n%sdiff\n%s%s\n", fence, d, fence)
			}
		}
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdChange(c ChangeDiff) string {
	what := c.Path
	if what == "" {
		what = c.Name
	}
	if what == "" {
		return fmt.Sprintf("%s %s", c.Kind, c.Op)
	}
	return fmt.Sprintf("%s `%s` %s", c.Kind, what, c.Op)
}

// codeFence returns a backtick fence longer than any backtick run in s, so
// a diff of a Markdown file cannot close the block early.
func codeFence(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			if run > longest {
				longest = run
			}
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}
