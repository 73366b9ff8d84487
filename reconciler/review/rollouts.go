package review

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/reconciler/rollout"
)

// readDiffFleet reads stoker/fleet from FleetDir or StatusRepoURL: its
// pools, and the names of its nodes.
func readDiffFleet(ctx context.Context, opts DiffOptions) (map[string]api.PoolFleet, map[string]bool, error) {
	out, nodes := map[string]api.PoolFleet{}, map[string]bool{}
	read := func(tree fs.FS) error {
		pools, ns, err := fleetview.ReadTree[api.NodeFleet](tree)
		for _, p := range pools {
			out[p.Name] = p
		}
		for _, n := range ns {
			nodes[n.Name] = true
		}
		return err
	}
	if opts.FleetDir != "" {
		if err := read(os.DirFS(opts.FleetDir)); err != nil {
			return nil, nil, fmt.Errorf("read fleet %s: %w", opts.FleetDir, err)
		}
		return out, nodes, nil
	}
	work := opts.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "stoker-diff-")
		if err != nil {
			return nil, nil, fmt.Errorf("create work dir: %w", err)
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	repo, err := gitsource.Open(gitsource.Options{URL: opts.StatusRepoURL, WorkDir: filepath.Join(work, "status"), Auth: opts.Auth})
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", gitsource.Redact(opts.StatusRepoURL), err)
	}
	v, err := fleetview.ReadFleet(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range v.Pools {
		out[p.Name] = p
	}
	for _, n := range v.Nodes {
		nodes[n.Name] = true
	}
	return out, nodes, nil
}

// addRollouts says, per pool, how many nodes the change reaches and in how
// many rounds maxUnavailable (from HEAD's pool definition) allows.
func (rep *DiffReport) addRollouts(fleet map[string]api.PoolFleet) error {
	for i := range rep.Pools {
		p := &rep.Pools[i]
		if p.To == "" {
			continue
		}
		f, ok := fleet[p.Name]
		ro := &Rollout{Machines: f.MachineCount}
		p.Rollout = ro
		if !ok {
			ro.Summary = "not on " + api.FleetBranch + " yet: no node is known to be in this pool"
			continue
		}
		mu, err := rollout.MaxUnavailable(rep.maxUnavailable[p.Name], f.MachineCount)
		if err != nil {
			return fmt.Errorf("pool %s: %w", p.Name, err)
		}
		ro.MaxUnavailable = mu
		ro.Paused = rep.paused[p.Name]
		if f.MachineCount > 0 {
			ro.Rounds = (f.MachineCount + ro.MaxUnavailable - 1) / ro.MaxUnavailable
		}
		ro.Summary = rolloutSummary(p.Action, ro)
	}
	return nil
}

func rolloutSummary(action api.ActionType, ro *Rollout) string {
	if ro.Machines == 0 {
		return "no nodes in this pool"
	}
	nodes := plural(ro.Machines, "node", "nodes")
	verb := map[api.ActionType]string{
		api.ActionReboot:       "will drain and reboot",
		api.ActionDrain:        "will be drained",
		api.ActionRestart:      "will restart services",
		api.ActionReload:       "will reload services",
		api.ActionDaemonReload: "will reload systemd",
		api.ActionNone:         "will update without disruption",
	}[action]
	if action == api.ActionReboot {
		verb = "will reboot"
	}
	s := fmt.Sprintf("%s %s, %d at a time: at least %s", nodes, verb, ro.MaxUnavailable, plural(ro.Rounds, "round", "rounds"))
	if ro.Paused {
		s += " (pool is paused: nothing moves until it is resumed)"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
