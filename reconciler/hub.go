package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
)

// maxConflictRetries bounds how often one reconcile re-reads and re-plans
// after losing a compare-and-swap race to another writer.
const maxConflictRetries = 8

// HubConfig wires a Hub to its Git repositories. Config, Status and Reports
// may be the same repository.
type HubConfig struct {
	// Config holds the people-written branches (main, canary, ...).
	Config gitsource.Repo
	// Status receives stoker/status and stoker/fleet.
	Status gitsource.Repo
	// Reports holds the stoker/reports/<node> branches.
	Reports gitsource.Repo
	// Branch is the default branch (pool definitions come from it).
	Branch string
	// Path is the directory inside the repo that holds the manifests.
	Path string
	// Inventory, when set, supplies node labels, age and readiness (the
	// Kubernetes API); otherwise agent reports are the only source.
	Inventory Inventory
	Load      LoadOptions
	Author    gitsource.Signature
	Log       logrus.FieldLogger
	// Now is the clock; nil means time.Now.
	Now     func() time.Time
	Metrics *Metrics
	// Previews are globs of config-repo branches the hub renders to
	// stoker/preview/<branch> for review (see preview.go).
	Previews []string
	// Trust is the signed chain (signing.go); the zero value is off.
	Trust HubTrust
}

// Hub renders the config repo into stoker/status and stoker/fleet and
// advances rollouts. Reconcile is safe to call from one goroutine at a time;
// the mutex makes concurrent triggers queue instead of interleaving.
type Hub struct {
	cfg HubConfig
	mu  sync.Mutex
	// lastFingerprint is the set of heads the last complete reconcile saw;
	// an unchanged fingerprint means there is nothing to do.
	lastFingerprint string
	// sourceBranches seen at the last render, checked for changes too.
	sourceBranches []string
	reportCache    map[string]*api.Report // by report commit
	treeCache      map[string]loaded      // by config commit
	previews       previewState
	trust          trustState
}

type loaded struct {
	repo     *Repo
	problems api.Problems
}

// NewHub returns a hub for cfg.
func NewHub(cfg HubConfig) *Hub {
	if cfg.Branch == "" {
		cfg.Branch = "main"
	}
	if cfg.Path == "" {
		cfg.Path = "."
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(nopWriter{})
		cfg.Log = l
	}
	if cfg.Author.Name == "" {
		cfg.Author = gitsource.Signature{Name: "stoker-hub", Email: "hub@stoker.invalid"}
	}
	return &Hub{cfg: cfg, reportCache: map[string]*api.Report{}, treeCache: map[string]loaded{}}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// Result says what one reconcile did.
type Result struct {
	// Skipped is true when no watched ref moved since the last reconcile.
	Skipped bool
	// StatusCommit and FleetCommit are the commits pushed ("" if none).
	StatusCommit, FleetCommit string
	// Steps are the nodes advanced to a new desiredConfig.
	Steps []Step
	// Errors are render problems (errors only) per pool.
	Errors map[string]api.Problems
}

// Reconcile runs the hub's steps once: check refs → fetch → load, validate
// and render every pool → read node reports → plan rollout → write
// stoker/status → write stoker/fleet. A compare-and-swap conflict makes it
// start over from fresh refs.
func (h *Hub) Reconcile(ctx context.Context) (Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	start := h.cfg.Now()
	var res Result
	var err error
	for attempt := 0; attempt < maxConflictRetries; attempt++ {
		res, err = h.reconcileOnce(ctx)
		if !errors.Is(err, gitsource.ErrConflict) {
			break
		}
		h.cfg.Log.WithError(err).Info("lost a compare-and-swap race; re-reading and re-planning")
		h.lastFingerprint = ""
	}
	h.cfg.Metrics.observeReconcile(h.cfg.Now().Sub(start), err, res)
	return res, err
}

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

func (h *Hub) reconcileOnce(ctx context.Context) (Result, error) {
	res := Result{Errors: map[string]api.Problems{}}
	// Step 1: check refs (one ls-remote per repo; no fetch).
	rf, err := h.checkRefs(ctx)
	if err != nil {
		return res, err
	}
	var inventory []InventoryNode
	invKey := ""
	if h.cfg.Inventory != nil {
		inventory, err = h.cfg.Inventory.Nodes(ctx)
		if err != nil {
			return res, fmt.Errorf("list nodes from inventory: %w", err)
		}
		invKey = inventoryKey(inventory)
	}
	fp := rf.fingerprint(invKey)
	if fp == h.lastFingerprint {
		res.Skipped = true
		h.previewStep(ctx) // preview branches are not in the fingerprint
		return res, nil
	}
	// Step 2: fetch what moved.
	if err := h.fetch(ctx, rf); err != nil {
		return res, err
	}
	// Step 3: load, validate and render every pool.
	rs, err := h.render(ctx, rf)
	if err != nil {
		return res, err
	}
	for pool, ps := range rs.errors {
		res.Errors[pool] = ps
	}
	// Step 4: read node reports.
	reports, err := h.readReports(ctx, rf)
	if err != nil {
		return res, err
	}
	// Step 5: plan rollout against the current stoker/status, as the hub
	// last signed it (an unverified head is superseded, never built on).
	statusBase, statusSuperseded, err := h.trustedHubCommit(ctx, api.StatusBranch, rf.status)
	if err != nil {
		return res, err
	}
	cur, err := h.readStatus(ctx, statusBase)
	if err != nil {
		return res, err
	}
	cur.superseded = statusSuperseded
	fleetBase, fleetSuperseded, err := h.trustedHubCommit(ctx, api.FleetBranch, rf.fleet)
	if err != nil {
		return res, err
	}
	prevFleet, err := h.readFleet(ctx, fleetBase)
	if err != nil {
		return res, err
	}
	prevFleet.superseded = fleetSuperseded
	plan, err := h.plan(rs, cur, prevFleet, reports, inventory)
	if err != nil {
		return res, err
	}
	res.Steps = plan.steps
	// Step 6: write stoker/status (desired).
	commit, err := h.writeStatus(ctx, rf, rs, cur, plan)
	if err != nil {
		return res, err
	}
	res.StatusCommit = commit
	// Step 7: write stoker/fleet (observed).
	commit, err = h.writeFleet(ctx, rf, rs, plan, prevFleet)
	if err != nil {
		return res, err
	}
	res.FleetCommit = commit
	// Step 8: previews of matching branches (best effort).
	h.previewStep(ctx)
	if res.StatusCommit == "" && res.FleetCommit == "" {
		h.lastFingerprint = fp
	}
	h.cfg.Metrics.observeFleet(plan.fleetPools)
	return res, nil
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

func (h *Hub) fetch(ctx context.Context, rf refs) error {
	var cfgBranches []string
	for b, c := range rf.config {
		if c != "" {
			cfgBranches = append(cfgBranches, b)
		}
	}
	sort.Strings(cfgBranches)
	if _, err := h.cfg.Config.Fetch(ctx, cfgBranches...); err != nil {
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
		if _, err := h.cfg.Status.Fetch(ctx, hub...); err != nil {
			return fmt.Errorf("fetch %s: %w", strings.Join(hub, ", "), err)
		}
	}
	var reps []string
	for node, c := range rf.reports {
		if _, ok := h.reportCache[c]; !ok {
			reps = append(reps, api.ReportsBranch(node))
		}
	}
	if len(reps) > 0 {
		sort.Strings(reps)
		if _, err := h.cfg.Reports.Fetch(ctx, reps...); err != nil {
			return fmt.Errorf("fetch %d report branches: %w", len(reps), err)
		}
	}
	return nil
}

// renderState is the outcome of the render step.
type renderState struct {
	mainCommit string
	// pools from the default branch; nil when it failed to load.
	pools []Source[api.MachineConfigPool]
	// targets holds a fresh render per pool that rendered cleanly.
	targets map[string]*renderedPool
	// errors per pool (errors only; warnings are logged).
	errors map[string]api.Problems
	// mainErrors are the default branch's own errors (no pool renders).
	mainErrors api.Problems
}

type renderedPool struct {
	target   api.PoolTarget
	rendered *api.Rendered
	encoded  []byte
	policy   *api.NodeDisruptionPolicy
}

func (h *Hub) loadCommit(ctx context.Context, commit string) (loaded, error) {
	if l, ok := h.treeCache[commit]; ok {
		return l, nil
	}
	tree, err := h.cfg.Config.Tree(ctx, commit)
	if err != nil {
		return loaded{}, fmt.Errorf("read tree %s: %w", short(commit), err)
	}
	repo, ps := Load(tree, h.cfg.Path, h.cfg.Load)
	for i := range ps {
		ps[i].Commit = commit
	}
	l := loaded{repo: repo, problems: ps}
	if len(h.treeCache) > 64 {
		h.treeCache = map[string]loaded{}
	}
	h.treeCache[commit] = l
	return l, nil
}

func (h *Hub) render(ctx context.Context, rf refs) (*renderState, error) {
	rs := &renderState{mainCommit: rf.config[h.cfg.Branch], targets: map[string]*renderedPool{}, errors: map[string]api.Problems{}}
	if ps, err := h.verifySource(ctx, h.cfg.Branch, rs.mainCommit); err != nil || ps != nil {
		rs.mainErrors = ps
		return rs, err
	}
	main, err := h.loadCommit(ctx, rs.mainCommit)
	if err != nil {
		return nil, err
	}
	h.logWarnings(main.problems, h.cfg.Branch)
	if errs := main.problems.Errors(); len(errs) > 0 {
		rs.mainErrors = errs
		h.cfg.Log.WithFields(logrus.Fields{"commit": short(rs.mainCommit)}).
			Warnf("%s fails validation (%d errors); keeping the last good render", h.cfg.Branch, len(errs))
		return rs, nil
	}
	rs.pools = main.repo.Pools
	var sources []string
	for _, p := range rs.pools {
		name := p.Object.Name
		branch := p.Object.Annotations[api.SourceBranchAnnotation]
		src := main
		commit := rs.mainCommit
		if branch == "" {
			branch = h.cfg.Branch
		} else if branch != h.cfg.Branch {
			sources = append(sources, branch)
			commit = rf.config[branch]
			if commit == "" {
				if _, checked := rf.config[branch]; !checked {
					// A newly annotated pool: its branch was not checked
					// yet. Look now so the first render needs no second pass.
					c, err := h.cfg.Config.Head(ctx, branch)
					if err != nil && !errors.Is(err, gitsource.ErrRefNotFound) {
						return nil, fmt.Errorf("check branch %s: %w", branch, err)
					}
					if c != "" {
						if _, err := h.cfg.Config.Fetch(ctx, branch); err != nil {
							return nil, fmt.Errorf("fetch %s: %w", branch, err)
						}
					}
					commit = c
					rf.config[branch] = c
				}
			}
			if commit == "" {
				rs.errors[name] = api.Problems{{File: p.File, Field: "metadata.annotations." + api.SourceBranchAnnotation,
					Message: fmt.Sprintf("source branch %q does not exist", branch), Severity: api.SeverityError, Commit: rs.mainCommit}}
				continue
			}
			if ps, err := h.verifySource(ctx, branch, commit); err != nil {
				return nil, err
			} else if ps != nil {
				rs.errors[name] = ps
				continue
			}
			src, err = h.loadCommit(ctx, commit)
			if err != nil {
				return nil, err
			}
			h.logWarnings(src.problems, branch)
			if errs := src.problems.Errors(); len(errs) > 0 {
				rs.errors[name] = errs
				continue
			}
		}
		pr, ps := h.renderPool(p, src.repo, branch, commit)
		for i := range ps {
			ps[i].Commit = commit
		}
		if errs := ps.Errors(); len(errs) > 0 {
			rs.errors[name] = errs
			continue
		}
		rs.targets[name] = pr
	}
	sort.Strings(sources)
	h.sourceBranches = sources
	return rs, nil
}

func (h *Hub) logWarnings(ps api.Problems, branch string) {
	for _, w := range ps.Warnings() {
		h.cfg.Log.WithFields(logrus.Fields{"commit": short(w.Commit), "path": w.File}).Debugf("%s: %s", branch, w.String())
	}
}

// renderPool renders one pool from the MachineConfigs of src (the pool's
// source branch) and builds its status-branch target.
func (h *Hub) renderPool(pool Source[api.MachineConfigPool], src *Repo, branch, commit string) (*renderedPool, api.Problems) {
	pr, ps := RenderPool(pool, src.MachineConfigs, RenderOptions{Validation: h.cfg.Load.Validation})
	if len(ps.Errors()) > 0 || pr == nil {
		return nil, ps
	}
	enc, err := pr.Rendered.Encode()
	if err != nil {
		return nil, append(ps, api.Problem{File: pool.File, Message: err.Error(), Severity: api.SeverityError})
	}
	policy := src.DisruptionPolicy()
	return &renderedPool{
		rendered: pr.Rendered,
		encoded:  enc,
		policy:   policy,
		target:   pr.Target(policy, branch, commit),
	}, ps
}

// refreshTarget keeps a pool's last good render but takes pause,
// maxUnavailable and drift policy from the pool's current definition, so a
// pool whose source branch is broken can still be paused.
func refreshTarget(pool api.MachineConfigPool, t api.PoolTarget) api.PoolTarget {
	t.Name = pool.Name
	t.Paused = pool.Spec.Paused
	t.MaxUnavailable, _ = ParseMaxUnavailable(pool.Spec.MaxUnavailable)
	t.Drift = api.DriftReport
	if d := pool.Annotations[api.DriftAnnotation]; d != "" {
		t.Drift = api.DriftPolicy(d)
	}
	return t
}

func (h *Hub) readReports(ctx context.Context, rf refs) (map[string]*api.Report, error) {
	out := map[string]*api.Report{}
	for node, commit := range rf.reports {
		if !h.verifyReport(ctx, node, commit) {
			continue
		}
		if r, ok := h.reportCache[commit]; ok {
			out[node] = r
			continue
		}
		tree, err := h.cfg.Reports.Tree(ctx, commit)
		if err != nil {
			return nil, fmt.Errorf("read report of %s: %w", node, err)
		}
		data, err := fs.ReadFile(tree, api.ReportFile)
		if err != nil {
			h.cfg.Log.WithFields(logrus.Fields{"node": node, "commit": short(commit)}).WithError(err).Warn("report branch has no readable report.yaml; ignoring it")
			continue
		}
		var r api.Report
		if err := yaml.UnmarshalStrict(data, &r); err != nil {
			h.cfg.Log.WithFields(logrus.Fields{"node": node, "commit": short(commit)}).WithError(err).Warn("report.yaml does not parse; ignoring it")
			continue
		}
		if r.Node == "" {
			r.Node = node
		}
		out[node] = &r
		h.reportCache[commit] = &r
	}
	return out, nil
}

// statusTree is what stoker/status holds now.
type statusTree struct {
	pools    map[string]api.PoolTarget
	nodes    map[string]api.NodeTarget
	rendered map[string][]byte // by rendered name
	// superseded: the branch head is not the hub's (signing.go); the
	// next commit restores this tree over it even if nothing changed.
	superseded bool
}

func (h *Hub) readStatus(ctx context.Context, commit string) (*statusTree, error) {
	st := &statusTree{pools: map[string]api.PoolTarget{}, nodes: map[string]api.NodeTarget{}, rendered: map[string][]byte{}}
	if commit == "" {
		return st, nil
	}
	tree, err := h.cfg.Status.Tree(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.StatusBranch, err)
	}
	if err := readYAMLDir(tree, "pools", func(name string, data []byte) error {
		var p api.PoolTarget
		if err := yaml.Unmarshal(data, &p); err != nil {
			return err
		}
		st.pools[name] = p
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read %s: %w", api.StatusBranch, err)
	}
	if err := readYAMLDir(tree, "nodes", func(name string, data []byte) error {
		var n api.NodeTarget
		if err := yaml.Unmarshal(data, &n); err != nil {
			return err
		}
		st.nodes[name] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read %s: %w", api.StatusBranch, err)
	}
	entries, err := fs.ReadDir(tree, "rendered")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s rendered/: %w", api.StatusBranch, err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		data, err := fs.ReadFile(tree, path.Join("rendered", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read %s rendered/%s: %w", api.StatusBranch, e.Name(), err)
		}
		st.rendered[name] = data
	}
	return st, nil
}

// fleetTree is what stoker/fleet holds now (for first-seen times and ages).
type fleetTree struct {
	pools      map[string]api.PoolFleet
	nodes      map[string]nodeFleetFile
	superseded bool // see statusTree
}

// nodeFleetFile is nodes/<node>.yaml on stoker/fleet; FirstSeen orders
// rollouts oldest first when no Kubernetes creationTimestamp exists.
type nodeFleetFile struct {
	api.NodeFleet `json:",inline"`
	FirstSeen     time.Time `json:"firstSeen"`
}

func (h *Hub) readFleet(ctx context.Context, commit string) (*fleetTree, error) {
	ft := &fleetTree{pools: map[string]api.PoolFleet{}, nodes: map[string]nodeFleetFile{}}
	if commit == "" {
		return ft, nil
	}
	tree, err := h.cfg.Status.Tree(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.FleetBranch, err)
	}
	err = readYAMLDir(tree, "pools", func(name string, data []byte) error {
		var p api.PoolFleet
		if err := yaml.Unmarshal(data, &p); err != nil {
			return err
		}
		ft.pools[name] = p
		return nil
	})
	if err == nil {
		err = readYAMLDir(tree, "nodes", func(name string, data []byte) error {
			var n nodeFleetFile
			if err := yaml.Unmarshal(data, &n); err != nil {
				return err
			}
			ft.nodes[name] = n
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.FleetBranch, err)
	}
	return ft, nil
}

func readYAMLDir(tree fs.FS, dir string, fn func(name string, data []byte) error) error {
	entries, err := fs.ReadDir(tree, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s/: %w", dir, err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok || e.IsDir() {
			continue
		}
		data, err := fs.ReadFile(tree, path.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("%s/%s: %w", dir, e.Name(), err)
		}
		if err := fn(name, data); err != nil {
			return fmt.Errorf("%s/%s: %w", dir, e.Name(), err)
		}
	}
	return nil
}

// planState is the outcome of the plan step: the desired state to write.
type planState struct {
	// pools: the targets to write (fresh render or last good).
	pools map[string]api.PoolTarget
	// nodes: every node's desired target to write.
	nodes map[string]api.NodeTarget
	steps []Step
	// fleet rows.
	fleetPools map[string]*api.PoolFleet
	fleetNodes map[string]nodeFleetFile
}

func (h *Hub) plan(rs *renderState, cur *statusTree, prev *fleetTree, reports map[string]*api.Report, inventory []InventoryNode) (*planState, error) {
	now := h.cfg.Now().UTC().Truncate(time.Second)
	ps := &planState{pools: map[string]api.PoolTarget{}, nodes: map[string]api.NodeTarget{}, fleetPools: map[string]*api.PoolFleet{}, fleetNodes: map[string]nodeFleetFile{}}

	// Pools to plan: the default branch's pools when it loaded, else the
	// pools already on stoker/status (the last good render).
	var planPools []PlanPool
	if rs.pools != nil {
		for _, p := range rs.pools {
			name := p.Object.Name
			target := cur.pools[name] // last good, possibly zero
			if pr, ok := rs.targets[name]; ok {
				target = pr.target
			} else {
				// A pool that failed to render keeps its last good target,
				// but pause and maxUnavailable follow the default branch.
				target = refreshTarget(p.Object, target)
			}
			if target.Rendered != "" {
				ps.pools[name] = target
			}
			planPools = append(planPools, PlanPool{Name: name, Target: target.Rendered, Paused: p.Object.Spec.Paused,
				MaxUnavailable: p.Object.Spec.MaxUnavailable, NodeSelector: p.Object.Spec.NodeSelector})
		}
	} else {
		// The default branch fails validation: stoker/status stays exactly
		// as it is (nodes keep the last good render, no rollout moves);
		// only stoker/fleet changes, to show the errors.
		for name, t := range cur.pools {
			ps.pools[name] = t
			planPools = append(planPools, PlanPool{Name: name, Target: t.Rendered, Paused: true})
		}
		sort.Slice(planPools, func(i, j int) bool { return planPools[i].Name < planPools[j].Name })
	}

	// Nodes: union of reports, inventory and nodes already on stoker/status.
	nodes := map[string]*PlanNode{}
	get := func(name string) *PlanNode {
		n, ok := nodes[name]
		if !ok {
			n = &PlanNode{Name: name, Ready: true}
			nodes[name] = n
		}
		return n
	}
	for name, r := range reports {
		n := get(name)
		n.Report = r
		n.Labels = r.Labels
	}
	for _, inv := range inventory {
		n := get(inv.Name)
		n.Labels = inv.Labels
		n.Created = inv.Created
		n.Ready = inv.Ready
	}
	for name := range cur.nodes {
		get(name)
	}
	names := make([]string, 0, len(nodes))
	for name, n := range nodes {
		n.Desired = cur.nodes[name].DesiredConfig
		if n.Created.IsZero() {
			if f, ok := prev.nodes[name]; ok && !f.FirstSeen.IsZero() {
				n.Created = f.FirstSeen
			} else {
				n.Created = now
			}
		}
		names = append(names, name)
	}
	sort.Strings(names)
	list := make([]PlanNode, 0, len(names))
	for _, name := range names {
		list = append(list, *nodes[name])
	}
	var members Membership
	if rs.pools != nil {
		var err error
		if members, err = Assign(planPools, list); err != nil {
			return nil, err
		}
	} else {
		members = Membership{Pool: map[string]string{}, Errors: map[string]string{}}
		for name, n := range cur.nodes {
			members.Pool[name] = n.Pool
		}
	}
	byPool := map[string][]PlanNode{}
	for _, n := range list {
		if p, ok := members.Pool[n.Name]; ok {
			byPool[p] = append(byPool[p], n)
		}
	}
	for _, pp := range planPools {
		steps, err := PlanRollout(pp, byPool[pp.Name])
		if err != nil {
			return nil, err
		}
		ps.steps = append(ps.steps, steps...)
	}
	advanced := map[string]string{}
	for _, s := range ps.steps {
		advanced[s.Node] = s.To
	}
	for _, n := range list {
		pool, ok := members.Pool[n.Name]
		desired := n.Desired
		if to, ok := advanced[n.Name]; ok {
			desired = to
		}
		if !ok {
			// No pool (or two): keep whatever it had, never advance it.
			if old, had := cur.nodes[n.Name]; had {
				ps.nodes[n.Name] = old
			}
		} else if desired != "" {
			ps.nodes[n.Name] = api.NodeTarget{Name: n.Name, Pool: pool, DesiredConfig: desired}
		}
	}

	// Fleet rows.
	for _, pp := range planPools {
		pf := &api.PoolFleet{Name: pp.Name, Config: pp.Target, Paused: pp.Paused, Created: now}
		if t, ok := ps.pools[pp.Name]; ok {
			pf.SourceBranch, pf.SourceCommit = t.SourceBranch, t.SourceCommit
		}
		if old, ok := prev.pools[pp.Name]; ok && !old.Created.IsZero() {
			pf.Created = old.Created
		}
		pf.Errors = append(pf.Errors, rs.mainErrors...)
		pf.Errors = append(pf.Errors, rs.errors[pp.Name]...)
		members := byPool[pp.Name]
		// Count against the desired state being written now.
		for i := range members {
			members[i].Desired = ps.nodes[members[i].Name].DesiredConfig
		}
		summarizePool(pf, pp.Target, members)
		ps.fleetPools[pp.Name] = pf
	}
	for _, n := range list {
		f := nodeFleetFile{NodeFleet: api.NodeFleet{Name: n.Name, Pool: members.Pool[n.Name], Error: members.Errors[n.Name],
			DesiredConfig: ps.nodes[n.Name].DesiredConfig}, FirstSeen: n.Created}
		if n.Report != nil {
			f.State = n.Report.State
			f.CurrentConfig = n.Report.CurrentConfig
			f.Reason = n.Report.Reason
			f.Drift = n.Report.Drift
			f.LastReport = n.Report.Heartbeat
		}
		if _, inv := nodes[n.Name]; inv && !n.Ready && f.Reason == "" {
			f.Reason = "node is NotReady"
		}
		ps.fleetNodes[n.Name] = f
	}
	return ps, nil
}

func (h *Hub) writeStatus(ctx context.Context, rf refs, rs *renderState, cur *statusTree, plan *planState) (string, error) {
	files := map[string][]byte{}
	keep := map[string]bool{}
	for name, t := range plan.pools {
		data, err := yaml.Marshal(t)
		if err != nil {
			return "", fmt.Errorf("encode pool %s: %w", name, err)
		}
		files[api.PoolFile(name)] = data
		keep[t.Rendered] = true
	}
	for name, n := range plan.nodes {
		data, err := yaml.Marshal(n)
		if err != nil {
			return "", fmt.Errorf("encode node %s: %w", name, err)
		}
		files[api.NodeFile(name)] = data
		keep[n.DesiredConfig] = true
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
		msg = fmt.Sprintf("supersede unverified %s head %s with the hub's last signed state\n\n%s", api.StatusBranch, short(rf.status), msg)
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
	h.cfg.Log.WithFields(logrus.Fields{"commit": short(commit)}).Info(strings.SplitN(msg, "\n", 2)[0])
	return commit, nil
}

// sameTree reports whether files is exactly what cur holds.
func sameTree(cur *statusTree, files map[string][]byte) bool {
	n := 0
	for name, t := range cur.pools {
		data, err := yaml.Marshal(t)
		if err != nil || string(files[api.PoolFile(name)]) != string(data) {
			return false
		}
		n++
	}
	for name, t := range cur.nodes {
		data, err := yaml.Marshal(t)
		if err != nil || string(files[api.NodeFile(name)]) != string(data) {
			return false
		}
		n++
	}
	for name, data := range cur.rendered {
		if string(files[api.RenderedFile(name)]) != string(data) {
			return false
		}
		n++
	}
	return n == len(files)
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
		lines = append(lines, fmt.Sprintf("render %s@%s: %s → %s (%s)", t.SourceBranch, short(t.SourceCommit), name, t.Rendered, detail))
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
		lines = append(lines, fmt.Sprintf("rollout %s: %s", k, strings.Join(byTarget[k], ", ")))
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
		lines = append(lines, fmt.Sprintf("update status from %s@%s", h.cfg.Branch, short(rs.mainCommit)))
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
	files["README.md"] = fleetREADME(pools, nodes, h.cfg.Now())
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
	msg := fmt.Sprintf("fleet %s@%s: %s\n", h.cfg.Branch, short(rs.mainCommit), strings.Join(summary, "; "))
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
