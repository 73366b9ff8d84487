package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/configserver"
	"stoker.dev/stoker/reconciler/httpserver"
	"stoker.dev/stoker/reconciler/notify"
	"stoker.dev/stoker/reconciler/render"
	"stoker.dev/stoker/reconciler/rollout"
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
	Load      render.LoadOptions
	Author    gitsource.Signature
	Log       logrus.FieldLogger
	// Now is the clock; nil means time.Now.
	Now     func() time.Time
	Metrics *httpserver.Metrics
	// Previews are globs of config-repo branches the hub renders to
	// stoker/preview/<branch> for review (see preview.go).
	Previews []string
	// Build names the hub's build on stoker/fleet (hub.yaml); empty
	// writes no hub.yaml.
	Build api.HubInfo
	// Trust is the signed chain (signing.go); the zero value is off.
	Trust HubTrust
	// Notify, when set, gets the events of every stoker/fleet transition
	// the hub pushes (notifystep.go); nil sends nothing.
	Notify *notify.Sender
	// UnreachableAfter is how old a node's last report or heartbeat may
	// get before the hub marks it Unreachable; 0 means
	// api.DefaultUnreachableMultiple × api.DefaultHeartbeat.
	UnreachableAfter time.Duration
	// StatusLayout is the stoker/status layout to write:
	// StatusLayoutAuto (0), StatusLayout1 or StatusLayout2.
	StatusLayout int
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
	// watched mirrors sourceBranches for the webhook (Watches).
	watched     watchedBranches
	reportCache map[string]*api.Report // by report commit
	// agentCache is agent.yaml beside each cached report (nil: absent).
	agentCache map[string]*api.AgentInfo
	treeCache  map[string]loaded // by config commit
	previews   previewState
	trust      trustState
	// notifyCommit is the default-branch commit the receivers were read at.
	notifyCommit string
	// windows are the pools' maintenance windows at the last plan; their
	// state at the clock is part of the fingerprint (windows.go).
	windows map[string]*api.MaintenanceWindow
	// snap is stoker/status for the config server (firstboot.go).
	snap atomic.Pointer[configserver.Snapshot]
}

type loaded struct {
	repo     *render.Repo
	problems api.Problems
	// policy is .stoker/rollout.yaml at the tree's root; policyProblems
	// its errors (only the default branch's matter).
	policy         *api.RolloutPolicy
	policyProblems api.Problems
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
	if cfg.UnreachableAfter <= 0 {
		cfg.UnreachableAfter = api.DefaultUnreachableMultiple * api.DefaultHeartbeat
	}
	return &Hub{cfg: cfg, reportCache: map[string]*api.Report{}, agentCache: map[string]*api.AgentInfo{}, treeCache: map[string]loaded{}}
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
	Steps []rollout.Step
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
	h.cfg.Metrics.ObserveReconcile(h.cfg.Now().Sub(start), err, res.Skipped, len(res.Steps), res.Errors)
	return res, err
}

func (h *Hub) reconcileOnce(ctx context.Context) (Result, error) {
	res := Result{Errors: map[string]api.Problems{}}
	ph := newPhases(h.cfg.Now)
	defer ph.log(h.cfg.Log, &res)
	// Step 1: check refs (one ls-remote per repo; no fetch).
	rf, err := h.checkRefs(ctx)
	ph.mark("check")
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
	// Unreachable verdicts change with the clock alone: they are part of
	// what the last reconcile saw.
	// So are maintenance windows opening and closing.
	fp := rf.fingerprint(invKey + "|" + h.unreachableKey(rf) + "|" + h.windowKey(h.cfg.Now()))
	if fp == h.lastFingerprint {
		res.Skipped = true
		h.previewStep(ctx) // preview branches are not in the fingerprint
		return res, nil
	}
	// Step 2: fetch what moved.
	unread := h.unreadReports(rf)
	ph.moved = len(unread)
	if err := h.fetch(ctx, rf, unread); err != nil {
		return res, err
	}
	ph.mark("fetch")
	// Step 3: load, validate and render every pool.
	rs, err := h.render(ctx, rf)
	ph.mark("render")
	if err != nil {
		return res, err
	}
	for pool, ps := range rs.errors {
		res.Errors[pool] = ps
	}
	if rs.pools != nil {
		h.notifyReceivers(ctx, rs.mainCommit)
	}
	// Step 4: read node reports.
	reports, err := h.readReports(ctx, rf)
	ph.mark("reports")
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
	now := h.cfg.Now()
	plan.layout = h.chooseStatusLayout(reports, h.agentInfos(rf, reports),
		func(r *api.Report) bool { return h.unreachable(r, now) })
	res.Steps = plan.steps
	ph.mark("plan")
	// Render errors per pool, the default branch's included: those are
	// every pool's (no pool renders).
	for name, pf := range plan.fleetPools {
		if len(pf.Errors) > 0 {
			res.Errors[name] = pf.Errors
		}
	}
	// Step 6: write stoker/status (desired).
	commit, err := h.writeStatus(ctx, rf, rs, cur, plan)
	ph.mark("status")
	if err != nil {
		return res, err
	}
	res.StatusCommit = commit
	if commit != "" {
		h.publishSnapshot(ctx, commit, rs)
	} else {
		h.publishSnapshot(ctx, statusBase, rs)
	}
	// Step 7: write stoker/fleet (observed).
	commit, err = h.writeFleet(ctx, rf, rs, plan, prevFleet)
	ph.mark("fleet")
	if err != nil {
		return res, err
	}
	res.FleetCommit = commit
	h.notifyStep(prevFleet, plan, commit)
	// Step 8: previews of matching branches (best effort).
	h.previewStep(ctx)
	if res.StatusCommit == "" && res.FleetCommit == "" {
		h.lastFingerprint = fp
	}
	states := map[api.NodeState]int{}
	for _, n := range plan.fleetNodes {
		states[n.State]++
	}
	h.cfg.Metrics.ObserveFleet(plan.fleetPools, states)
	return res, nil
}

// unreachable is the hub's verdict on a node's last report at now.
func (h *Hub) unreachable(r *api.Report, now time.Time) bool {
	return r != nil && now.Sub(r.Heartbeat) > h.cfg.UnreachableAfter
}

// agentInfos is agent.yaml of each report read, by node.
func (h *Hub) agentInfos(rf refs, reports map[string]*api.Report) map[string]*api.AgentInfo {
	out := map[string]*api.AgentInfo{}
	for node := range reports {
		out[node] = h.agentCache[rf.reports[node]]
	}
	return out
}

// unreachableKey names the nodes whose cached report is too old now.
func (h *Hub) unreachableKey(rf refs) string {
	now := h.cfg.Now()
	var out []string
	for node, commit := range rf.reports {
		if h.unreachable(h.reportCache[commit], now) {
			out = append(out, node)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
