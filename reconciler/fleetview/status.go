package fleetview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/trust"
)

// StatusOptions are `stoker status`'s flags.
type StatusOptions struct {
	// RepoURL holds the stoker/fleet branch (the hub's --status-repo).
	RepoURL  string
	WorkDir  string
	Auth     gitsource.AuthOptions
	Output   string // table, wide, json or yaml
	Watch    bool
	Interval time.Duration
	// Pools, when set, limits the output to these pools and their nodes
	// (`stoker status worker`); an unknown pool is an error.
	Pools []string
	// WaitFor is a pool condition ("Updated", "Degraded=False", ...):
	// status polls every Interval until every selected pool has it, then
	// prints the fleet; after Timeout it fails, printing what it saw.
	WaitFor string
	Timeout time.Duration
	// TrustHubKeys are the hub's public keys (as the agents'
	// --trust-hub-key): the stoker/fleet head must be signed by one of
	// them, and the output says which; otherwise status prints what it
	// read, marked unverified, and fails.
	TrustHubKeys []string
	Out          io.Writer
	Now          func() time.Time
}

// FleetView is stoker/fleet as `stoker status -o json|yaml` prints it.
type FleetView struct {
	Commit string          `json:"commit"`
	Pools  []api.PoolFleet `json:"pools"`
	Nodes  []api.NodeFleet `json:"nodes"`
	// Trust is the hub's trust.yaml: commits it refused (signing on).
	Trust *api.FleetTrust `json:"trust,omitempty"`
	// Signature says what was verified about Commit ("" = not checked).
	Signature string `json:"signature,omitempty"`
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
	if _, err := api.ReadLayout(tree, api.FleetBranch); err != nil {
		return nil, err
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
	if data, err := fs.ReadFile(tree, api.FleetTrustFile); err == nil {
		var t api.FleetTrust
		if err := yaml.Unmarshal(data, &t); err != nil {
			return nil, fmt.Errorf("read %s %s: %w", api.FleetBranch, api.FleetTrustFile, err)
		}
		v.Trust = &t
	}
	sort.Slice(v.Pools, func(i, j int) bool { return v.Pools[i].Name < v.Pools[j].Name })
	sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Name < v.Nodes[j].Name })
	return v, nil
}

// WriteFleet prints v in format (table, json or yaml).
func WriteFleet(w io.Writer, v *FleetView, format string, now time.Time) error {
	switch format {
	case "", "table", "wide":
		if v.Signature != "" {
			fmt.Fprintf(w, "%s @ %s: %s\n\n", api.FleetBranch, Short(v.Commit), v.Signature)
		}
		pools := WritePoolTable
		if format == "wide" {
			pools = WritePoolTableWide
		}
		if err := pools(w, v.Pools, now); err != nil {
			return err
		}
		fmt.Fprintln(w)
		if err := WriteNodeTable(w, v.Nodes, now); err != nil {
			return err
		}
		if lines := rolloutLines(v.Pools); len(lines) > 0 {
			fmt.Fprintf(w, "\n%s\n", strings.Join(lines, "\n"))
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
		if v.Trust != nil && len(v.Trust.Refused) > 0 {
			fmt.Fprintln(w)
			for _, r := range v.Trust.Refused {
				fmt.Fprintf(w, "refused %s %s%s at %s: %s\n", r.Kind, r.Branch, r.Node, Short(r.Commit), r.Reason)
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
	return fmt.Errorf("unknown output format %q (want table, wide, json or yaml)", format)
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
	var hubKeys *trust.Set
	if len(o.TrustHubKeys) > 0 {
		if hubKeys, err = trust.LoadFiles(o.TrustHubKeys...); err != nil {
			return fmt.Errorf("status: --trust-hub-key: %w", err)
		}
	}
	wantType, wantStatus, err := parseWaitFor(o.WaitFor)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if o.WaitFor != "" {
		return waitFor(ctx, o, repo, wantType, wantStatus)
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
			if err := v.Select(o.Pools); err != nil {
				return fmt.Errorf("status: %w", err)
			}
			var verr error
			if hubKeys != nil {
				verr = verifyFleet(ctx, repo, hubKeys, v)
			}
			if o.Watch && last != "" {
				fmt.Fprintf(o.Out, "\n--- %s @ %s\n", o.Now().Format(time.TimeOnly), Short(v.Commit))
			}
			if err := WriteFleet(o.Out, v, o.Output, o.Now()); err != nil {
				return err
			}
			if verr != nil && !o.Watch {
				return fmt.Errorf("status: %w", verr)
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

// verifyFleet checks v's commit against the hub's keys and records the
// result in v.Signature.
func verifyFleet(ctx context.Context, repo *gitsource.GoGit, keys *trust.Set, v *FleetView) error {
	c, err := repo.History().Commit(ctx, v.Commit)
	if err != nil {
		return fmt.Errorf("verify %s: %w", api.FleetBranch, err)
	}
	by, err := keys.Verify(c.Signed, "")
	if err != nil {
		v.Signature = "UNVERIFIED: " + err.Error() + " (not signed by a key in --trust-hub-key)"
		return fmt.Errorf("%s at %s is not signed by the hub: %w", api.FleetBranch, Short(v.Commit), err)
	}
	v.Signature = "verified, signed by the hub's " + by.String()
	return nil
}
