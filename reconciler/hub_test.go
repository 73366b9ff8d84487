package reconciler

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/test/gitserver"
)

const canaryPool = `apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfigPool
metadata:
  name: worker-canary
  annotations:
    stoker.dev/source-branch: canary
spec:
  machineConfigSelector:
    matchExpressions:
      - {key: machineconfiguration.openshift.io/role, operator: In, values: [worker, worker-canary]}
  nodeSelector:
    matchLabels:
      node-role.kubernetes.io/worker-canary: ""
`

// fleetEnv is a real Git server with a config repo, a hub, and a test
// stand-in for agents that pushes real report branches.
type fleetEnv struct {
	t      *testing.T
	srv    *gitserver.Server
	url    string
	hub    *Hub
	client gitsource.Repo // the test's own clone (reads status, writes reports)
	now    time.Time
	nodes  map[string]map[string]string // node -> labels
	// layout is the hub's HubConfig.StatusLayout; agentInfo, when set,
	// is pushed beside every report as the agent's agent.yaml.
	layout    int
	agentInfo *api.AgentInfo
	// agentVersion is every report's AgentVersion.
	agentVersion string
}

func newFleetEnv(t *testing.T, files map[string]string) *fleetEnv {
	t.Helper()
	return newFleetEnvLayout(t, StatusLayoutAuto, files)
}

func newFleetEnvLayout(t *testing.T, layout int, files map[string]string) *fleetEnv {
	t.Helper()
	srv := gitserver.New(t, gitserver.Daemon)
	srv.SeedRepo(t, "config", files, "main")
	e := &fleetEnv{t: t, srv: srv, url: srv.URL("config"), now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), nodes: map[string]map[string]string{}, layout: layout}
	e.hub = e.newHub()
	e.client = e.open(t.TempDir())
	return e
}

func (e *fleetEnv) open(dir string) gitsource.Repo {
	r, err := gitsource.Open(gitsource.Options{URL: e.url, WorkDir: dir})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *fleetEnv) newHub() *Hub {
	repo := e.open(e.t.TempDir())
	return NewHub(HubConfig{Config: repo, Status: repo, Reports: repo, Now: func() time.Time { return e.now }, StatusLayout: e.layout})
}

func (e *fleetEnv) reconcile() Result {
	e.t.Helper()
	e.now = e.now.Add(time.Minute)
	res, err := e.hub.Reconcile(context.Background())
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return res
}

func (e *fleetEnv) push(branch string, files map[string]string, remove ...string) {
	e.t.Helper()
	if _, err := e.srv.Seed("config", files, remove, branch); err != nil {
		e.t.Fatal(err)
	}
}

// readBranch returns a branch's files, or nil when it does not exist.
func (e *fleetEnv) readBranch(branch string) map[string]string {
	e.t.Helper()
	heads, err := e.client.Fetch(context.Background(), branch)
	if err != nil {
		e.t.Fatal(err)
	}
	if heads[branch] == "" {
		return nil
	}
	tree, err := e.client.Tree(context.Background(), heads[branch])
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	_ = fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := fs.ReadFile(tree, p)
			out[p] = string(data)
		}
		return nil
	})
	return out
}

// status returns stoker/status's pools and every node's target, in
// whichever layout the branch is.
func (e *fleetEnv) status() (map[string]api.PoolTarget, map[string]api.NodeTarget) {
	files := e.readBranch(api.StatusBranch)
	pools := map[string]api.PoolTarget{}
	tree := fstest.MapFS{}
	for p, data := range files {
		tree[p] = &fstest.MapFile{Data: []byte(data)}
		if filepath.Dir(p) == "pools" {
			var t api.PoolTarget
			mustYAML(e.t, data, &t)
			pools[t.Name] = t
		}
	}
	version, err := api.ReadLayout(tree, api.StatusBranch)
	if err != nil {
		e.t.Fatal(err)
	}
	nodes, err := api.StatusNodeTargets(tree, version)
	if err != nil {
		e.t.Fatal(err)
	}
	return pools, nodes
}

func mustYAML(t *testing.T, data string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
}

// report pushes node's report branch as its agent would.
func (e *fleetEnv) report(node string, state api.NodeState, current string) {
	e.t.Helper()
	ctx := context.Background()
	r := api.Report{Node: node, State: state, CurrentConfig: current, Labels: e.nodes[node], Heartbeat: e.now, AgentVersion: e.agentVersion}
	data, err := yaml.Marshal(r)
	if err != nil {
		e.t.Fatal(err)
	}
	branch := api.ReportsBranch(node)
	for i := 0; i < 3; i++ {
		parent, err := e.client.Head(ctx, branch)
		if errors.Is(err, gitsource.ErrRefNotFound) {
			parent = ""
		} else if err != nil {
			e.t.Fatal(err)
		}
		if parent != "" {
			if _, err := e.client.Fetch(ctx, branch); err != nil {
				e.t.Fatal(err)
			}
		}
		changes := map[string][]byte{api.ReportFile: data}
		if e.agentInfo != nil {
			info, err := yaml.Marshal(e.agentInfo)
			if err != nil {
				e.t.Fatal(err)
			}
			changes[api.AgentFile] = info
		}
		_, err = e.client.Commit(ctx, gitsource.CommitRequest{Branch: branch, Parent: parent,
			Changes: changes, Message: "report " + node})
		if err == nil || errors.Is(err, gitsource.ErrNothingToCommit) {
			return
		}
		if !errors.Is(err, gitsource.ErrConflict) {
			e.t.Fatal(err)
		}
	}
	e.t.Fatalf("report %s: conflicts", node)
}

func (e *fleetEnv) addNode(name string, roles ...string) {
	labels := map[string]string{}
	for _, r := range roles {
		labels[api.NodeRoleLabelPrefix+r] = ""
	}
	e.nodes[name] = labels
	e.report(name, api.StateDone, "")
}

// converge plays every agent once: a node whose desiredConfig differs from
// what it runs applies it and reports Done. It returns the nodes that moved.
func (e *fleetEnv) converge(current map[string]string) []string {
	_, nodes := e.status()
	var moved []string
	for name := range e.nodes {
		want := nodes[name].DesiredConfig
		if want != "" && want != current[name] {
			current[name] = want
			e.report(name, api.StateDone, want)
			moved = append(moved, name)
		}
	}
	return moved
}

// rollout reconciles and converges until nothing moves, checking after
// every status commit that no pool has more nodes changing than allowed.
func (e *fleetEnv) rollout(current map[string]string, maxUnavailable map[string]int) {
	e.t.Helper()
	for i := 0; i < 30; i++ {
		res := e.reconcile()
		pools, nodes := e.status()
		changing := map[string]int{}
		for name, n := range nodes {
			if n.DesiredConfig != current[name] {
				changing[n.Pool]++
			}
		}
		for pool, c := range changing {
			max := maxUnavailable[pool]
			if max == 0 {
				max = 1
			}
			if c > max {
				e.t.Fatalf("pool %s has %d nodes changing at once, maxUnavailable %d (pools %v)", pool, c, max, pools)
			}
		}
		if len(e.converge(current)) == 0 && len(res.Steps) == 0 {
			return
		}
	}
	e.t.Fatal("rollout did not settle")
}

func TestHubRolloutCanaryPauseAndBadCommit(t *testing.T) {
	testHubRolloutCanary(t, StatusLayoutAuto)
}

// testHubRolloutCanary runs TestHubRolloutCanaryPauseAndBadCommit with
// the hub writing stoker/status in layout.
func testHubRolloutCanary(t *testing.T, layout int) {
	e := newFleetEnvLayout(t, layout, map[string]string{
		"pools/worker.yaml":        workerPool(false, 2),
		"pools/worker-canary.yaml": canaryPool,
		"mc/50-chrony.yaml":        fileMC("50-chrony", "worker", "/etc/chrony.conf", "server%20a"),
	})
	e.push("canary", map[string]string{"mc/50-chrony.yaml": fileMC("50-chrony", "worker", "/etc/chrony.conf", "server%20a")})
	for _, n := range []string{"w1", "w2", "w3", "w4", "w5"} {
		e.addNode(n, "worker")
	}
	e.addNode("c1", "worker", "worker-canary")
	current := map[string]string{}
	limits := map[string]int{"worker": 2, "worker-canary": 1}

	// 1. First render and rollout: every node converges, 2 workers at a time.
	res := e.reconcile()
	if len(res.Steps) != 3 {
		t.Fatalf("first reconcile advanced %v, want 2 workers and the canary", res.Steps)
	}
	e.converge(current)
	e.rollout(current, limits)
	pools, nodes := e.status()
	w1 := pools["worker"].Rendered
	c1 := pools["worker-canary"].Rendered
	if w1 == "" || c1 == "" || !strings.HasPrefix(w1, "rendered-worker-") {
		t.Fatalf("pool targets %+v", pools)
	}
	for name := range e.nodes {
		if current[name] == "" || nodes[name].DesiredConfig != current[name] {
			t.Fatalf("node %s did not converge: desired %q current %q", name, nodes[name].DesiredConfig, current[name])
		}
	}
	status := e.readBranch(api.StatusBranch)
	if _, ok := status[api.RenderedFile(w1)]; !ok {
		t.Fatalf("status branch lacks %s", api.RenderedFile(w1))
	}
	fleet := e.readBranch(api.FleetBranch)
	var wf api.PoolFleet
	mustYAML(t, fleet[api.PoolFile("worker")], &wf)
	if wf.MachineCount != 5 || wf.UpdatedMachineCount != 5 || !wf.Updated || wf.Degraded {
		t.Fatalf("fleet worker counts %+v", wf)
	}
	if !strings.Contains(fleet["README.md"], "| worker |") {
		t.Fatalf("fleet README lacks the worker row:\n%s", fleet["README.md"])
	}

	// 2. A push to canary reaches only the canary pool.
	e.push("canary", map[string]string{"mc/60-canary.yaml": fileMC("60-canary", "worker", "/etc/canary", "new")})
	e.rollout(current, limits)
	pools, _ = e.status()
	if pools["worker"].Rendered != w1 {
		t.Fatalf("canary push changed the worker pool: %s → %s", w1, pools["worker"].Rendered)
	}
	if pools["worker-canary"].Rendered == c1 || pools["worker-canary"].SourceBranch != "canary" {
		t.Fatalf("canary push did not reach the canary pool: %+v", pools["worker-canary"])
	}
	if current["c1"] != pools["worker-canary"].Rendered {
		t.Fatalf("canary node at %s, want %s", current["c1"], pools["worker-canary"].Rendered)
	}
	canaryTarget := pools["worker-canary"].Rendered

	// 3. Merge canary into main: the workers get the same change (the
	// worker render differs from the canary's only by pool name).
	e.push("main", map[string]string{"mc/60-canary.yaml": fileMC("60-canary", "worker", "/etc/canary", "new")})
	e.rollout(current, limits)
	pools, _ = e.status()
	if pools["worker"].Rendered == w1 {
		t.Fatal("merging canary into main did not promote the change to worker")
	}
	w2 := pools["worker"].Rendered
	rendered, err := api.ParseRendered([]byte(e.readBranch(api.StatusBranch)[api.RenderedFile(w2)]))
	if err != nil {
		t.Fatal(err)
	}
	if !hasFile(rendered, "/etc/canary") {
		t.Fatalf("promoted worker render lacks /etc/canary")
	}
	if current["w3"] != w2 {
		t.Fatalf("w3 at %s, want %s", current["w3"], w2)
	}
	if pools["worker-canary"].Rendered != canaryTarget {
		t.Fatal("merge to main changed the canary pool, which follows canary")
	}

	// 4. Pause: the pool renders but nobody advances; unpausing resumes.
	e.push("main", map[string]string{
		"pools/worker.yaml": workerPool(true, 2),
		"mc/50-chrony.yaml": fileMC("50-chrony", "worker", "/etc/chrony.conf", "server%20b"),
	})
	res = e.reconcile()
	pools, nodes = e.status()
	if !pools["worker"].Paused || pools["worker"].Rendered == w2 {
		t.Fatalf("paused pool should show its new render: %+v", pools["worker"])
	}
	if len(res.Steps) != 0 {
		t.Fatalf("paused pool advanced %v", res.Steps)
	}
	for name, n := range nodes {
		if n.Pool == "worker" && n.DesiredConfig != w2 {
			t.Fatalf("paused pool moved node %s to %s", name, n.DesiredConfig)
		}
	}
	w3 := pools["worker"].Rendered
	e.push("main", map[string]string{"pools/worker.yaml": workerPool(false, 2)})
	e.rollout(current, limits)
	if current["w5"] != w3 {
		t.Fatalf("unpaused pool did not resume: w5 at %s, want %s", current["w5"], w3)
	}

	// 5. A bad commit never reaches stoker/status; its errors reach
	// stoker/fleet with commit, file and field; the fix proceeds.
	before := e.srv.Head(t, "config", api.StatusBranch)
	bad := e.srvSeed("main", map[string]string{"mc/70-bad.yaml": fileMC("70-bad", "worker", "/usr/bin/evil", "x")})
	e.reconcile()
	if after := e.srv.Head(t, "config", api.StatusBranch); after != before {
		t.Fatalf("a bad commit moved %s from %s to %s", api.StatusBranch, before, after)
	}
	fleet = e.readBranch(api.FleetBranch)
	mustYAML(t, fleet[api.PoolFile("worker")], &wf)
	if len(wf.Errors) == 0 || wf.Errors[0].Commit != bad || wf.Errors[0].File != "mc/70-bad.yaml" ||
		!strings.Contains(wf.Errors[0].Field, "spec.config.storage.files[0].path") {
		t.Fatalf("fleet worker errors %+v, want one naming commit %s, mc/70-bad.yaml and the path field", wf.Errors, bad)
	}
	if !strings.Contains(fleet["README.md"], "mc/70-bad.yaml") {
		t.Fatalf("fleet README does not show the render error:\n%s", fleet["README.md"])
	}
	e.push("main", map[string]string{"mc/70-bad.yaml": fileMC("70-bad", "worker", "/etc/good", "x")})
	e.rollout(current, limits)
	pools, _ = e.status()
	if pools["worker"].Rendered == w3 || current["w1"] != pools["worker"].Rendered {
		t.Fatalf("the fix did not proceed: pool %s, w1 at %s", pools["worker"].Rendered, current["w1"])
	}
	fleet = e.readBranch(api.FleetBranch)
	var fixed api.PoolFleet
	mustYAML(t, fleet[api.PoolFile("worker")], &fixed)
	if len(fixed.Errors) != 0 {
		t.Fatalf("errors stayed after the fix: %+v", fixed.Errors)
	}

	// 6. Reverting rolls back: the config returns to an earlier render name.
	e.push("main", nil, "mc/70-bad.yaml")
	e.rollout(current, limits)
	pools, _ = e.status()
	if pools["worker"].Rendered != w3 {
		t.Fatalf("revert gave %s, want the earlier render %s", pools["worker"].Rendered, w3)
	}

	// 7. Nothing changed: the next reconcile is skipped after a no-op pass.
	e.reconcile()
	if res := e.reconcile(); !res.Skipped {
		t.Fatalf("an idle reconcile was not skipped: %+v", res)
	}
}

func (e *fleetEnv) srvSeed(branch string, files map[string]string) string {
	e.t.Helper()
	c, err := e.srv.Seed("config", files, nil, branch)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func hasFile(r *api.Rendered, path string) bool {
	for _, f := range r.Config.Storage.Files {
		if f.Path == path {
			return true
		}
	}
	return false
}

func TestHubMembershipConflictAndDegraded(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"pools/a.yaml":      strings.ReplaceAll(strings.ReplaceAll(canaryPool, "worker-canary", "a"), "    stoker.dev/source-branch: canary\n", ""),
		"pools/b.yaml":      strings.ReplaceAll(strings.ReplaceAll(canaryPool, "worker-canary", "b"), "    stoker.dev/source-branch: canary\n", ""),
		"mc/50-x.yaml":      fileMC("50-x", "worker", "/etc/x", "1"),
	})
	e.addNode("both", "worker", "a", "b")
	e.addNode("w1", "worker")
	e.addNode("w2", "worker")
	e.reconcile()
	_, nodes := e.status()
	if _, ok := nodes["both"]; ok {
		t.Fatalf("a node in two custom pools was given a target: %+v", nodes["both"])
	}
	fleet := e.readBranch(api.FleetBranch)
	var nf api.NodeFleet
	mustYAML(t, fleet[api.NodeFile("both")], &nf)
	if !strings.Contains(nf.Error, "more than one custom pool: a, b") {
		t.Fatalf("fleet node error %q", nf.Error)
	}
	// w1 goes first (maxUnavailable 1); it fails: Degraded holds w2 back.
	if nodes["w1"].DesiredConfig == "" || nodes["w2"].DesiredConfig != "" {
		t.Fatalf("want only w1 advanced, got %+v", nodes)
	}
	e.report("w1", api.StateDegraded, "")
	e.reconcile()
	_, nodes = e.status()
	if nodes["w2"].DesiredConfig != "" {
		t.Fatal("a Degraded node did not consume the pool's capacity")
	}
	fleet = e.readBranch(api.FleetBranch)
	var pf api.PoolFleet
	mustYAML(t, fleet[api.PoolFile("worker")], &pf)
	if pf.DegradedMachineCount != 1 || !pf.Degraded {
		t.Fatalf("fleet worker %+v, want 1 degraded", pf)
	}
}

// TestTwoHubsRace runs two hubs with separate caches against one repo at
// once: compare-and-swap lets one advance the rollout; the other re-reads
// and finds nothing left to do, so maxUnavailable holds.
func TestTwoHubsRace(t *testing.T) {
	e := newFleetEnv(t, map[string]string{
		"pools/worker.yaml": workerPool(false, 1),
		"mc/50-x.yaml":      fileMC("50-x", "worker", "/etc/x", "1"),
	})
	for _, n := range []string{"w1", "w2", "w3"} {
		e.addNode(n, "worker")
	}
	hubs := []*Hub{e.newHub(), e.newHub()}
	current := map[string]string{}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make([]error, len(hubs))
		for i, h := range hubs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = h.Reconcile(context.Background())
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("hub %d: %v", i, err)
			}
		}
		_, nodes := e.status()
		changing := 0
		for name, n := range nodes {
			if n.DesiredConfig != current[name] {
				changing++
			}
		}
		if changing > 1 {
			t.Fatalf("round %d: %d nodes changing at once with maxUnavailable 1", round, changing)
		}
		e.converge(current)
	}
	_, nodes := e.status()
	for _, n := range []string{"w1", "w2", "w3"} {
		if nodes[n].DesiredConfig == "" {
			t.Fatalf("after three rounds %s has no target: %+v", n, nodes)
		}
	}
}
