package review

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/render"
)

// ErrFailOn means a pool's action reached DiffOptions.FailOn; callers exit
// 1 on it, as on render.ErrInvalid.
var ErrFailOn = errors.New("a pool's disruption reaches the --fail-on action")

// DiffOptions are the inputs of `stoker diff BASE HEAD [DIR]`.
type DiffOptions struct {
	// Base and Head are two revisions of the Git checkout Dir, or, when Dir
	// is empty and both are directories, two directories.
	Base, Head string
	// Dir is the checkout (default "."); a subdirectory of a checkout
	// diffs only the manifests under it.
	Dir string
	// Branch is the config-repo branch BASE and HEAD stand for (default
	// DefaultBranch): a pull request's target branch. Only the pools whose
	// source branch it is render BASE and HEAD; every other pool renders its
	// own source branch (stoker.dev/source-branch, else DefaultBranch), read
	// from origin/<branch> or <branch> in the checkout, on both sides, so a
	// PR to canary shows only the pools that follow canary.
	Branch string
	// DefaultBranch is the hub's --branch (default "main"): pool definitions
	// come from it, and pools without a source-branch annotation render it.
	DefaultBranch string
	// Output is "text" (default), "markdown" or "json".
	Output string
	// FailOn is "", "reboot" or "drain": RunDiff returns ErrFailOn when any
	// pool's action is at least that strong.
	FailOn string
	// StatusRepoURL (the hub's --status-repo) or FleetDir (a checkout of
	// stoker/fleet) supply node counts per pool.
	StatusRepoURL string
	FleetDir      string
	WorkDir       string
	Auth          gitsource.AuthOptions
	// MaxDiffBytes caps each file's printed unified diff (default 8 KiB).
	MaxDiffBytes int
	// TrustRoots are the hub's --trust-root files; HEAD's signature is
	// checked against them plus BASE's RepoSigners file (default
	// .stoker/allowed_signers, "-" = none) and the report says whether it
	// verified. Without them a signed HEAD is reported unverified.
	TrustRoots  []string
	RepoSigners string
	Stdout      io.Writer
	// Now is the clock maintenance windows are read at (nil: time.Now).
	Now func() time.Time
}

// DiffReport is what `stoker diff` found; -o json prints it.
type DiffReport struct {
	Base string `json:"base"`
	Head string `json:"head"`
	// Errors are HEAD's validation errors; when there are any, Pools is
	// empty and the exit status is 1.
	Errors api.Problems `json:"errors,omitempty"`
	// Notes say what the diff could not look at (a BASE that does not
	// load, a pool's source branch missing from the checkout).
	Notes []string `json:"notes,omitempty"`
	// Pools whose rendered config changes, by name.
	Pools []PoolDiff `json:"pools"`
	// Action is the strongest action of any pool.
	Action api.ActionType `json:"action"`
	// Signature says whether HEAD is a commit the hub would render.
	Signature *HeadSignature `json:"signature,omitempty"`
	// Rules are the maintenance windows, holds and order (rules.go).
	Rules *RolloutRules `json:"rolloutRules,omitempty"`

	// HEAD's pool settings, for the rollout.
	maxUnavailable map[string]*intstr.IntOrString
	paused         map[string]bool
}

// PoolDiff is one pool whose rendered config changes.
type PoolDiff struct {
	Name string `json:"name"`
	// From and To are the rendered names; From is empty for a new pool, To
	// for a removed one.
	From    string         `json:"from"`
	To      string         `json:"to"`
	Action  api.ActionType `json:"action"`
	Changes []ChangeDiff   `json:"changes"`
	// Rollout is set when the fleet is known.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Window says when the pool's maintenance window lets this change
	// start, when the window gates it.
	Window string `json:"window,omitempty"`
}

// ChangeDiff is one change of a pool's rendered config, what it does to a
// node and why, with the detail a reviewer reads.
type ChangeDiff struct {
	Kind api.ChangeKind `json:"kind"`
	Path string         `json:"path,omitempty"`
	Name string         `json:"name,omitempty"`
	Op   string         `json:"op"`
	// Action is the change's strongest action; Actions describes them all
	// ("DaemonReload, Restart node-health.service").
	Action  api.ActionType `json:"action"`
	Actions string         `json:"actions"`
	Reason  string         `json:"reason"`
	// Diff is a unified diff of the decoded contents (files, units,
	// dropins), possibly cut at MaxDiffBytes.
	Diff string `json:"diff,omitempty"`
	// Details are one-line facts: hidden contents, mode changes, ssh key
	// fingerprints, kernel arguments.
	Details []string `json:"details,omitempty"`
}

// Rollout is how a pool's change reaches its nodes.
type Rollout struct {
	Machines       int    `json:"machines"`
	MaxUnavailable int    `json:"maxUnavailable"`
	Rounds         int    `json:"rounds"`
	Paused         bool   `json:"paused,omitempty"`
	Summary        string `json:"summary"`
}

// RunDiff renders BASE and HEAD, writes the per-pool diff in Output, and
// returns an error wrapping render.ErrInvalid when HEAD has validation errors or
// ErrFailOn when FailOn is reached (after writing the report).
func RunDiff(ctx context.Context, opts DiffOptions) error {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	switch opts.Output {
	case "", "text", "markdown", "md", "json":
	default:
		return fmt.Errorf("diff: unknown output format %q (want text, markdown or json)", opts.Output)
	}
	failOn, err := parseFailOn(opts.FailOn)
	if err != nil {
		return err
	}
	if opts.Base == "" || opts.Head == "" {
		return errors.New("diff: BASE and HEAD are required")
	}
	base, head := diffSides(opts)
	rep, err := computeDiff(ctx, base, head, opts)
	if err != nil {
		return fmt.Errorf("diff %s %s: %w", opts.Base, opts.Head, err)
	}
	sig, err := checkHead(ctx, base, head, opts)
	if err != nil {
		return fmt.Errorf("diff: verify %s: %w", opts.Head, err)
	}
	rep.Signature = &sig
	if len(rep.Errors) == 0 && (opts.StatusRepoURL != "" || opts.FleetDir != "") {
		fleet, nodes, err := readDiffFleet(ctx, opts)
		if err != nil {
			return fmt.Errorf("diff: %w", err)
		}
		if rep.Rules != nil {
			for _, w := range rep.Rules.policy.UnknownNodes(func(n string) bool { return nodes[n] }) {
				rep.Rules.Warnings = append(rep.Rules.Warnings, w.String())
			}
		}
		if err := rep.addRollouts(fleet); err != nil {
			return fmt.Errorf("diff: %w", err)
		}
	}
	if err := WriteDiff(opts.Stdout, rep, opts.Output, opts.MaxDiffBytes); err != nil {
		return fmt.Errorf("diff: write report: %w", err)
	}
	if n := len(rep.Errors); n > 0 {
		return fmt.Errorf("%s: %d error(s): %w", opts.Head, n, render.ErrInvalid)
	}
	if failOn != "" && rep.Action.Strength() >= failOn.Strength() {
		return fmt.Errorf("%w: %s", ErrFailOn, rep.Action)
	}
	return nil
}

func parseFailOn(s string) (api.ActionType, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "reboot":
		return api.ActionReboot, nil
	case "drain":
		return api.ActionDrain, nil
	}
	return "", fmt.Errorf("diff: --fail-on %q: want reboot or drain", s)
}

// diffSides reads two directories when Dir is unset and BASE and HEAD are
// both directories, else two revisions of the checkout Dir.
func diffSides(opts DiffOptions) (base, head diffSide) {
	if opts.Dir == "" && isDir(opts.Base) && isDir(opts.Head) {
		return dirSide{opts.Base}, dirSide{opts.Head}
	}
	dir := dirOr(opts.Dir)
	return gitSide{dir: dir, rev: opts.Base}, gitSide{dir: dir, rev: opts.Head}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// computeDiff loads and renders both sides and compares every pool. Only
// errors reading a side are returned; HEAD's validation errors land in
// DiffReport.Errors.
func computeDiff(ctx context.Context, base, head diffSide, opts DiffOptions) (*DiffReport, error) {
	defaultBranch := opts.DefaultBranch
	if defaultBranch == "" {
		defaultBranch = "main"
	}
	branch := opts.Branch
	if branch == "" {
		branch = defaultBranch
	}
	rep := &DiffReport{Base: opts.Base, Head: opts.Head, Pools: []PoolDiff{}, Action: api.ActionNone}
	headFS, err := head.tree(ctx)
	if err != nil {
		return nil, err
	}
	baseFS, err := base.tree(ctx)
	if err != nil {
		return nil, err
	}
	headRepo, ps := render.Load(headFS, ".", render.LoadOptions{})
	if errs := ps.Errors(); len(errs) > 0 {
		rep.Errors = errs
		return rep, nil
	}
	baseRepo, bps := render.Load(baseFS, ".", render.LoadOptions{})
	if errs := bps.Errors(); len(errs) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s has %d validation error(s); its pools are compared as empty", opts.Base, len(errs)))
		baseRepo = nil
	}
	headR := &sideRenderer{side: head, repo: headRepo, branch: branch, defaultBranch: defaultBranch, trees: map[string]*render.Repo{}}
	baseR := &sideRenderer{side: base, repo: baseRepo, branch: branch, defaultBranch: defaultBranch, trees: map[string]*render.Repo{}}
	for _, s := range []*sideRenderer{headR, baseR} {
		note, problems, err := s.loadPools(ctx)
		if err != nil {
			return nil, err
		}
		if len(problems) > 0 {
			rep.Errors = problems
			return rep, nil
		}
		if note != "" && s == headR {
			rep.Notes = append(rep.Notes, note)
		}
	}
	rep.maxUnavailable = map[string]*intstr.IntOrString{}
	rep.paused = map[string]bool{}
	for _, p := range headR.pools.Pools {
		rep.maxUnavailable[p.Object.Name] = p.Object.Spec.MaxUnavailable
		rep.paused[p.Object.Name] = p.Object.Spec.Paused
	}

	names := map[string]bool{}
	for _, p := range headR.pools.Pools {
		names[p.Object.Name] = true
	}
	if baseR.pools != nil {
		for _, p := range baseR.pools.Pools {
			names[p.Object.Name] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		to, policy, note, problems, err := headR.render(ctx, name)
		if err != nil {
			return nil, err
		}
		if note != "" {
			rep.Notes = append(rep.Notes, note)
		}
		if len(problems) > 0 {
			rep.Errors = append(rep.Errors, problems...)
			continue
		}
		from, _, _, bprob, err := baseR.render(ctx, name)
		if err != nil {
			return nil, err
		}
		if len(bprob) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("pool %s does not render at %s; compared as new", name, opts.Base))
			from = nil
		}
		if from == nil && to == nil {
			continue
		}
		if from != nil && to != nil && from.Name == to.Name {
			continue
		}
		rep.Pools = append(rep.Pools, poolDiff(name, from, to, policy))
	}
	if len(rep.Errors) > 0 {
		rep.Pools = []PoolDiff{}
		return rep, nil
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rules, rps := rolloutRules(baseFS, headFS, baseR.pools, headR.pools, now())
	if len(rps) > 0 {
		rep.Errors, rep.Pools = rps, []PoolDiff{}
		return rep, nil
	}
	if !rules.empty() {
		rep.Rules = rules
	}
	for i, p := range rep.Pools {
		if p.Action.Strength() > rep.Action.Strength() {
			rep.Action = p.Action
		}
		if p.To != "" {
			rep.Pools[i].Window = poolWindowNote(headR.pools, p.Name, p.Action, now())
		}
	}
	annotateSources(rep, headR.pools, func(p api.MachineConfigPool) *render.Repo {
		if b := p.Annotations[api.SourceBranchAnnotation]; b != "" && b != branch {
			return headR.trees[b]
		}
		return headRepo
	})
	return rep, nil
}

// poolDiff plans one pool's move under HEAD's disruption policy and adds
// the detail a reviewer needs to each change.
func poolDiff(name string, from, to *api.Rendered, policy *api.NodeDisruptionPolicy) PoolDiff {
	pd := PoolDiff{Name: name, Changes: []ChangeDiff{}, Action: api.ActionNone}
	if from != nil {
		pd.From = from.Name
	}
	if to == nil {
		// A removed pool changes no node by itself: its nodes fall back to
		// another pool, whose own diff is what they get.
		return pd
	}
	pd.To = to.Name
	plan := api.PlanChanges(from, to, policy)
	pd.Action = plan.Action
	for _, c := range plan.Changes {
		cd := ChangeDiff{Kind: c.Kind, Path: c.Path, Name: c.Name, Op: c.Op, Reason: c.Reason,
			Action: strongest(c.Actions), Actions: describeActions(c.Actions)}
		addDetail(&cd, from, to)
		pd.Changes = append(pd.Changes, cd)
	}
	return pd
}

func strongest(actions []api.Action) api.ActionType {
	out := api.ActionNone
	for _, a := range actions {
		if a.Type.Strength() > out.Strength() {
			out = a.Type
		}
	}
	return out
}

func describeActions(actions []api.Action) string {
	if len(actions) == 0 {
		return string(api.ActionNone)
	}
	parts := make([]string, len(actions))
	for i, a := range actions {
		s := string(a.Type)
		switch {
		case a.Type == api.ActionReload && a.Reload != nil:
			s += " " + a.Reload.ServiceName
		case a.Type == api.ActionRestart && a.Restart != nil:
			s += " " + a.Restart.ServiceName
		}
		parts[i] = s
	}
	return strings.Join(parts, ", ")
}

func dirOr(d string) string {
	if d == "" {
		return "."
	}
	return d
}
