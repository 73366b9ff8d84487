package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
)

// refs is what the check step saw.
type refs struct {
	config  map[string]string // branch -> commit
	status  string
	fleet   string
	reports map[string]string // node -> commit
}

func (r refs) fingerprint(inv string) string {
	var b strings.Builder
	for _, m := range []map[string]string{r.config, r.reports} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s;", k, m[k])
		}
		b.WriteString("|")
	}
	fmt.Fprintf(&b, "%s|%s|%s", r.status, r.fleet, inv)
	return b.String()
}

func inventoryKey(nodes []InventoryNode) string {
	var b strings.Builder
	sorted := append([]InventoryNode(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, n := range sorted {
		keys := make([]string, 0, len(n.Labels))
		for k := range n.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "%s:%v:%d:", n.Name, n.Ready, n.Created.Unix())
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s,", k, n.Labels[k])
		}
		b.WriteString(";")
	}
	return b.String()
}

func (h *Hub) checkRefs(ctx context.Context) (refs, error) {
	rf := refs{config: map[string]string{}, reports: map[string]string{}}
	branches := append([]string{h.cfg.Branch}, h.sourceBranches...)
	for _, b := range branches {
		if _, ok := rf.config[b]; ok {
			continue
		}
		c, err := h.cfg.Config.Head(ctx, b)
		if errors.Is(err, gitsource.ErrRefNotFound) {
			rf.config[b] = ""
			continue
		}
		if err != nil {
			return rf, fmt.Errorf("check branch %s: %w", b, err)
		}
		rf.config[b] = c
	}
	if rf.config[h.cfg.Branch] == "" {
		return rf, fmt.Errorf("check branch %s: %w", h.cfg.Branch, gitsource.ErrRefNotFound)
	}
	hubRefs, err := h.cfg.Status.Refs(ctx, "stoker/")
	if err != nil {
		return rf, fmt.Errorf("check status branches: %w", err)
	}
	rf.status = hubRefs[api.StatusBranch]
	rf.fleet = hubRefs[api.FleetBranch]
	reports := hubRefs
	if h.cfg.Reports != h.cfg.Status {
		reports, err = h.cfg.Reports.Refs(ctx, api.ReportsBranchPrefix)
		if err != nil {
			return rf, fmt.Errorf("check report branches: %w", err)
		}
	}
	for b, c := range reports {
		if node, ok := strings.CutPrefix(b, api.ReportsBranchPrefix); ok && node != "" {
			rf.reports[node] = c
		}
	}
	return rf, nil
}

// unreadReports maps each report branch whose commit the hub has not
// read yet (what the fetch step brings) to that commit.
func (h *Hub) unreadReports(rf refs) map[string]string {
	unread := map[string]string{}
	for node, c := range rf.reports {
		if _, ok := h.reportCache[c]; !ok {
			unread[api.ReportsBranch(node)] = c
		}
	}
	return unread
}

// fetch brings what moved since the hub last read it: unread is
// unreadReports(rf).
func (h *Hub) fetch(ctx context.Context, rf refs, unread map[string]string) error {
	var cfgBranches []string
	for b, c := range rf.config {
		if c != "" {
			cfgBranches = append(cfgBranches, b)
		}
	}
	sort.Strings(cfgBranches)
	// Every fetch takes the refs the check step just saw: no second ref
	// check per repository (with reports in the polled repository, or
	// many report branches, each check is the whole advertisement).
	if _, err := gitsource.FetchChecked(ctx, h.cfg.Config, rf.config, cfgBranches...); err != nil {
		return fmt.Errorf("fetch %s: %w", strings.Join(cfgBranches, ", "), err)
	}
	var hub []string
	if rf.status != "" {
		hub = append(hub, api.StatusBranch)
	}
	if rf.fleet != "" {
		hub = append(hub, api.FleetBranch)
	}
	if len(hub) > 0 {
		seen := map[string]string{api.StatusBranch: rf.status, api.FleetBranch: rf.fleet}
		if _, err := gitsource.FetchChecked(ctx, h.cfg.Status, seen, hub...); err != nil {
			return fmt.Errorf("fetch %s: %w", strings.Join(hub, ", "), err)
		}
	}
	if len(unread) > 0 {
		reps := slices.Sorted(maps.Keys(unread))
		got, err := gitsource.FetchChecked(ctx, h.cfg.Reports, unread, reps...)
		if err != nil {
			return fmt.Errorf("fetch %d report branches: %w", len(reps), err)
		}
		// An agent that pushed again since the check: its branch's first
		// fetch is one commit deep and holds only the newer report, which
		// is the one read (rf.reports is the caller's map).
		for b, c := range got {
			if node, ok := strings.CutPrefix(b, api.ReportsBranchPrefix); ok && c != "" {
				rf.reports[node] = c
			}
		}
	}
	return nil
}
