package reconciler

import (
	"strings"
	"sync"

	"stoker.dev/stoker/api"
)

// watchedBranches is the set of branches whose pushes concern the hub,
// readable while a reconcile runs (the webhook asks without waiting).
type watchedBranches struct {
	mu      sync.RWMutex
	sources []string
}

func (w *watchedBranches) set(sources []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sources = append([]string(nil), sources...)
}

// Watches reports whether a push to branch concerns the hub: the default
// branch, a pool's source branch as of the last render, a preview glob,
// the node report branches and the hub's own branches.
func (h *Hub) Watches(branch string) bool {
	if branch == h.cfg.Branch || branch == api.StatusBranch || branch == api.FleetBranch ||
		strings.HasPrefix(branch, api.ReportsBranchPrefix) {
		return true
	}
	h.watched.mu.RLock()
	for _, s := range h.watched.sources {
		if s == branch {
			h.watched.mu.RUnlock()
			return true
		}
	}
	h.watched.mu.RUnlock()
	ok, _ := matchAny(h.cfg.Previews, branch)
	return ok
}
