package fleetview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
)

// StatusOptions are `stoker status`'s flags.
type StatusOptions struct {
	// RepoURL holds the stoker/fleet branch (the hub's --status-repo).
	RepoURL  string
	WorkDir  string
	Auth     gitsource.AuthOptions
	Output   string // table, json or yaml
	Watch    bool
	Interval time.Duration
	Out      io.Writer
	Now      func() time.Time
}

// FleetView is stoker/fleet as `stoker status -o json|yaml` prints it.
type FleetView struct {
	Commit string          `json:"commit"`
	Pools  []api.PoolFleet `json:"pools"`
	Nodes  []api.NodeFleet `json:"nodes"`
}

// ReadFleet reads stoker/fleet at its current head.
func ReadFleet(ctx context.Context, repo gitsource.Repo) (*FleetView, error) {
	heads, err := repo.Fetch(ctx, api.FleetBranch)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", api.FleetBranch, err)
	}
	commit := heads[api.FleetBranch]
	if commit == "" {
		return nil, fmt.Errorf("%s: %w (has a hub run against this repo?)", api.FleetBranch, gitsource.ErrRefNotFound)
	}
	tree, err := repo.Tree(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.FleetBranch, err)
	}
	pools, nodes, err := ReadTree[api.NodeFleet](tree)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.FleetBranch, err)
	}
	v := &FleetView{Commit: commit}
	for _, p := range pools {
		v.Pools = append(v.Pools, p)
	}
	for _, n := range nodes {
		v.Nodes = append(v.Nodes, n)
	}
	sort.Slice(v.Pools, func(i, j int) bool { return v.Pools[i].Name < v.Pools[j].Name })
	sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Name < v.Nodes[j].Name })
	return v, nil
}

// WriteFleet prints v in format (table, json or yaml).
func WriteFleet(w io.Writer, v *FleetView, format string, now time.Time) error {
	switch format {
	case "", "table":
		if err := WritePoolTable(w, v.Pools, now); err != nil {
			return err
		}
		fmt.Fprintln(w)
		if err := WriteNodeTable(w, v.Nodes); err != nil {
			return err
		}
		for _, p := range v.Pools {
			for _, e := range p.Errors {
				fmt.Fprintf(w, "\nrender error in pool %s (%s): %s", p.Name, Short(e.Commit), e.String())
			}
		}
		for _, p := range v.Pools {
			if len(p.Errors) > 0 {
				fmt.Fprintln(w)
				break
			}
		}
		return nil
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return fmt.Errorf("unknown output format %q (want table, json or yaml)", format)
}

// RunStatus prints the fleet once, or with Watch every time it changes.
func RunStatus(ctx context.Context, o StatusOptions) error {
	if o.RepoURL == "" {
		return errors.New("status: --repo is required")
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "stoker-status-")
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	}
	repo, err := gitsource.Open(gitsource.Options{URL: o.RepoURL, WorkDir: o.WorkDir, Auth: o.Auth})
	if err != nil {
		return fmt.Errorf("status: open %s: %w", gitsource.Redact(o.RepoURL), err)
	}
	last := ""
	for {
		head, err := repo.Head(ctx, api.FleetBranch)
		if err != nil && !o.Watch {
			return fmt.Errorf("status: %s: %w", api.FleetBranch, err)
		}
		if err == nil && head != last {
			v, err := ReadFleet(ctx, repo)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			if o.Watch && last != "" {
				fmt.Fprintf(o.Out, "\n--- %s @ %s\n", o.Now().Format(time.TimeOnly), Short(v.Commit))
			}
			if err := WriteFleet(o.Out, v, o.Output, o.Now()); err != nil {
				return err
			}
			last = head
		}
		if !o.Watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Interval):
		}
	}
}
