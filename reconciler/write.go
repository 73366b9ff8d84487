package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
)

func (h *Hub) writeStatus(ctx context.Context, rf refs, rs *renderState, cur *statusTree, plan *planState) (string, error) {
	files := map[string][]byte{api.LayoutFile: api.LayoutMarker(plan.layout.version)}
	keep := map[string]bool{}
	targets := map[string]string{}
	for name, t := range plan.pools {
		data, err := yaml.Marshal(t)
		if err != nil {
			return "", fmt.Errorf("encode pool %s: %w", name, err)
		}
		files[api.PoolFile(name)] = data
		keep[t.Rendered] = true
		targets[name] = t.Rendered
	}
	for name, n := range plan.nodes {
		keep[n.DesiredConfig] = true
		if plan.layout.version >= api.StatusLayoutV2 {
			continue
		}
		data, err := yaml.Marshal(n)
		if err != nil {
			return "", fmt.Errorf("encode node %s: %w", name, err)
		}
		files[api.NodeFile(name)] = data
	}
	if plan.layout.rollouts {
		if err := rolloutFiles(encodeRollouts(plan.nodes, targets, plan.rank, cur.rollouts), files); err != nil {
			return "", err
		}
	}
	for r := range keep {
		if data, ok := cur.rendered[r]; ok {
			files[api.RenderedFile(r)] = data // never rewritten
			continue
		}
		found := false
		for _, pr := range rs.targets {
			if pr.rendered.Name == r {
				files[api.RenderedFile(r)] = pr.encoded
				found = true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("rendered config %s is referenced but neither rendered now nor on %s", r, api.StatusBranch)
		}
	}
	if rf.status != "" && !cur.superseded && sameTree(cur, files) {
		return "", nil
	}
	msg := h.statusMessage(rs, cur, plan)
	if cur.superseded {
		msg = fmt.Sprintf("supersede unverified %s head %s with the hub's last signed state\n\n%s", api.StatusBranch, fleetview.Short(rf.status), msg)
	}
	commit, err := h.cfg.Status.Commit(ctx, gitsource.CommitRequest{
		Branch: api.StatusBranch, Parent: rf.status, Changes: files, Replace: true, AllowEmpty: cur.superseded,
		Message: msg, Author: h.cfg.Author, When: h.cfg.Now(),
	})
	if errors.Is(err, gitsource.ErrNothingToCommit) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("push %s: %w", api.StatusBranch, err)
	}
	h.cfg.Log.WithFields(logrus.Fields{"commit": fleetview.Short(commit)}).Info(strings.SplitN(msg, "\n", 2)[0])
	return commit, nil
}

// sameTree reports whether files is exactly what cur holds.
func sameTree(cur *statusTree, files map[string][]byte) bool {
	if len(files) != len(cur.files) {
		return false
	}
	for p, data := range files {
		if old, ok := cur.files[p]; !ok || !bytes.Equal(old, data) {
			return false
		}
	}
	return true
}

// statusMessage names the source commit and what changed, e.g.
// "render main@1a2b3c4: worker → rendered-worker-9f8e (2 files; Reboot)".
func (h *Hub) statusMessage(rs *renderState, cur *statusTree, plan *planState) string {
	var lines []string
	names := make([]string, 0, len(plan.pools))
	for n := range plan.pools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t := plan.pools[name]
		old := cur.pools[name]
		if old.Rendered == t.Rendered {
			continue
		}
		detail := "new pool"
		if pr, ok := rs.targets[name]; ok && old.Rendered != "" {
			if prev, err := api.ParseRendered(cur.rendered[old.Rendered]); err == nil {
				p := api.PlanChanges(prev, pr.rendered, pr.policy)
				files := 0
				for _, c := range p.Changes {
					if c.Kind == api.ChangeFile {
						files++
					}
				}
				detail = fmt.Sprintf("%d changes, %d files; %s", len(p.Changes), files, p.Action)
			}
		}
		lines = append(lines, fmt.Sprintf("render %s@%s: %s → %s (%s)", t.SourceBranch, fleetview.Short(t.SourceCommit), name, t.Rendered, detail))
	}
	byTarget := map[string][]string{}
	for _, s := range plan.steps {
		k := s.Pool + " → " + s.To
		byTarget[k] = append(byTarget[k], s.Node)
	}
	keys := make([]string, 0, len(byTarget))
	for k := range byTarget {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("rollout %s: %s", k, nodeList(byTarget[k])))
	}
	for name, t := range plan.pools {
		if o, ok := cur.pools[name]; ok && o.Rendered == t.Rendered && o.Paused != t.Paused {
			word := "resume"
			if t.Paused {
				word = "pause"
			}
			lines = append(lines, fmt.Sprintf("%s %s", word, name))
		}
	}
	if len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("update status from %s@%s", h.cfg.Branch, fleetview.Short(rs.mainCommit)))
	}
	if len(lines) == 1 {
		return lines[0] + "\n"
	}
	return fmt.Sprintf("%s (+%d more)\n\n%s\n", lines[0], len(lines)-1, strings.Join(lines, "\n"))
}

func (h *Hub) writeFleet(ctx context.Context, rf refs, rs *renderState, plan *planState, prev *fleetTree) (string, error) {
	files := map[string][]byte{}
	pools := sortedPools(plan.fleetPools)
	for _, p := range pools {
		data, err := yaml.Marshal(p)
		if err != nil {
			return "", fmt.Errorf("encode fleet pool %s: %w", p.Name, err)
		}
		files[api.PoolFile(p.Name)] = data
	}
	var nodes []api.NodeFleet
	names := make([]string, 0, len(plan.fleetNodes))
	for n := range plan.fleetNodes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		f := plan.fleetNodes[name]
		data, err := yaml.Marshal(f)
		if err != nil {
			return "", fmt.Errorf("encode fleet node %s: %w", name, err)
		}
		files[api.NodeFile(name)] = data
		nodes = append(nodes, f.NodeFleet)
	}
	files["README.md"] = fleetview.README(pools, nodes, h.cfg.Now())
	files[api.LayoutFile] = api.LayoutMarker(api.FleetLayoutVersion)
	if h.cfg.Build.Version != "" {
		data, err := yaml.Marshal(h.cfg.Build)
		if err != nil {
			return "", fmt.Errorf("encode %s: %w", api.HubFile, err)
		}
		files[api.HubFile] = data
	}
	h.trustFiles(files)
	var summary []string
	for _, p := range pools {
		s := fmt.Sprintf("%s %d/%d updated", p.Name, p.UpdatedMachineCount, p.MachineCount)
		if p.DegradedMachineCount > 0 {
			s += fmt.Sprintf(", %d degraded", p.DegradedMachineCount)
		}
		if len(p.Errors) > 0 {
			s += fmt.Sprintf(", %d render errors", len(p.Errors))
		}
		summary = append(summary, s)
	}
	msg := fmt.Sprintf("fleet %s@%s: %s\n", h.cfg.Branch, fleetview.Short(rs.mainCommit), strings.Join(summary, "; "))
	commit, err := h.cfg.Status.Commit(ctx, gitsource.CommitRequest{
		Branch: api.FleetBranch, Parent: rf.fleet, Changes: files, Replace: true, AllowEmpty: prev.superseded,
		Message: msg, Author: h.cfg.Author, When: h.cfg.Now(),
	})
	if errors.Is(err, gitsource.ErrNothingToCommit) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("push %s: %w", api.FleetBranch, err)
	}
	return commit, nil
}

// maxMessageNodes bounds the node names a status commit message lists per
// rollout line, so the message of a step stays small at any step size
// (the rollout's cursor and order name every node).
const maxMessageNodes = 10

func nodeList(nodes []string) string {
	if len(nodes) <= maxMessageNodes {
		return strings.Join(nodes, ", ")
	}
	return fmt.Sprintf("%s (+%d more)", strings.Join(nodes[:maxMessageNodes], ", "), len(nodes)-maxMessageNodes)
}
