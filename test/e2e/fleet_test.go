//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	examplesrepo "stoker.dev/stoker/examples-repo"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/gitserver"
)

// TestPushConverges (1): the examples repo, pushed, reaches every node:
// files, units, ssh keys and kernel arguments on each root; each node's
// report branch; the fleet counts.
func TestPushConverges(t *testing.T) {
	t.Parallel()
	f := newFleet(t, nil)
	for _, b := range []string{"main", "canary"} {
		if _, err := f.Seed(examplesrepo.FS, b, "import examples-repo"); err != nil {
			t.Fatal(err)
		}
	}
	addNodes(t, f,
		demo.Node{Name: "master-0", Labels: map[string]string{"node-role.kubernetes.io/master": ""}},
		worker("worker-0", "a"),
		demo.Node{Name: "infra-0", Labels: map[string]string{"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/infra": ""}},
	)
	v := waitConverged(t, f, "", 3*time.Minute)

	for _, n := range []string{"master-0", "worker-0", "infra-0"} {
		if got := readRoot(t, f, n, "/etc/chrony.conf"); !strings.Contains(got, "pool 0.rhel.pool.ntp.org iburst") {
			t.Errorf("%s: /etc/chrony.conf = %q", n, got)
		}
		r, err := f.Report(n)
		if err != nil {
			t.Fatal(err)
		}
		if r.Node != n || r.State != api.StateDone || r.CurrentConfig != nodeOf(v, n).CurrentConfig {
			t.Errorf("%s: report %s/%s current %s, fleet says %s", n, r.Node, r.State, r.CurrentConfig, nodeOf(v, n).CurrentConfig)
		}
	}
	for _, n := range []string{"worker-0", "infra-0"} {
		for path, want := range map[string]string{
			"/etc/sysctl.d/90-stoker.conf":                          "net.core.somaxconn = 1024",
			"/etc/ssh/sshd_config.d/40-stoker-hardening.conf":       "PermitRootLogin no",
			"/etc/containers/registries.conf.d/50-mirror.conf":      "mirror.example.internal:5000",
			"/etc/systemd/system/node-health.service":               "ExecStart=/usr/bin/logger",
			"/etc/systemd/system/node-health.service.d/10-tag.conf": "HEALTH_TAG=stoker-example",
			"/home/core/.ssh/authorized_keys.d/ignition":            "ops@example.com",
		} {
			if got := readRoot(t, f, n, path); !strings.Contains(got, want) {
				t.Errorf("%s:%s = %q, want it to contain %q", n, path, got, want)
			}
		}
		if _, err := os.Lstat(filepath.Join(f.Root(n), "/etc/systemd/system/multi-user.target.wants/node-health.service")); err != nil {
			t.Errorf("%s: node-health.service not enabled: %v", n, err)
		}
		kargs, _ := os.ReadFile(f.KernelArgsFile(n))
		if !strings.Contains(string(kargs), "audit=1") {
			t.Errorf("%s: kernel args %q lack audit=1", n, kargs)
		}
	}
	if _, err := os.Stat(filepath.Join(f.Root("master-0"), "/etc/sysctl.d/90-stoker.conf")); err == nil {
		t.Error("master-0 got a worker-only file")
	}
	if got := readRoot(t, f, "infra-0", "/etc/motd.d/50-infra"); !strings.Contains(got, "infra node") {
		t.Errorf("infra-0 motd = %q", got)
	}
	want := map[string]int{"master": 1, "worker": 1, "infra": 1, "worker-canary": 0}
	for name, count := range want {
		p := poolOf(v, name)
		if p.MachineCount != count || p.UpdatedMachineCount != count || p.ReadyMachineCount != count || p.DegradedMachineCount != 0 || !p.Updated {
			t.Errorf("pool %s: %+v, want %d machines all updated", name, p, count)
		}
	}
	// Every agent here reads stoker/status layout 2 and says so (agent.yaml
	// beside its report), so the hub writes layout 2: no nodes/, the same
	// targets from rollouts/.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		marker, _ := gitserver.Git(f.RepoPath(), nil, "show", api.StatusBranch+":"+api.LayoutFile)
		if strings.TrimSpace(marker) == "version: 2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stoker/status %s = %q after 2m, want version 2 once every agent reads it", api.LayoutFile, marker)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ls, _ := gitserver.Git(f.RepoPath(), nil, "ls-tree", "--name-only", api.StatusBranch); strings.Contains(ls, "nodes") {
		t.Errorf("stoker/status in layout 2 still has nodes/: %s", ls)
	}
	targets := statusTargets(f)
	for _, n := range []string{"master-0", "worker-0", "infra-0"} {
		if targets[n] != nodeOf(v, n).CurrentConfig {
			t.Errorf("%s: layout 2 target %q, runs %q", n, targets[n], nodeOf(v, n).CurrentConfig)
		}
	}
}

// TestPausedPoolHolds (3): a paused pool gets its new render but no node
// moves until it is unpaused.
func TestPausedPoolHolds(t *testing.T) {
	t.Parallel()
	f := newFleet(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	addNodes(t, f, worker("w-0", "a"), worker("w-1", "b"))
	v := waitConverged(t, f, "", 2*time.Minute)
	old := poolOf(v, "worker").Config

	if _, err := f.Commit("main", map[string]string{
		"pools/worker.yaml":          pool("worker", "1", true, ""),
		"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2"),
	}, nil, "pause worker and change"); err != nil {
		t.Fatal(err)
	}
	v, err := f.WaitFor(context.Background(), time.Minute, func(v *fleetview.FleetView) bool {
		p := poolOf(v, "worker")
		return p.Paused && p.Config != old
	}, nil)
	if err != nil {
		t.Fatalf("pool not paused with a new render: %v\n%s", err, table(v))
	}
	time.Sleep(8 * interval) // several hub and agent rounds
	v, _ = f.Status(context.Background())
	for _, n := range []string{"w-0", "w-1"} {
		if got := readRoot(t, f, n, e2eFile); got != "v1" {
			t.Errorf("%s moved while paused: %s = %q", n, e2eFile, got)
		}
		if nodeOf(v, n).CurrentConfig != old {
			t.Errorf("%s: current %s while paused, want %s", n, nodeOf(v, n).CurrentConfig, old)
		}
	}
	if poolOf(v, "worker").UpdatedMachineCount != 0 {
		t.Errorf("paused pool counts updated machines: %+v", poolOf(v, "worker"))
	}

	if _, err := f.Commit("main", map[string]string{"pools/worker.yaml": pool("worker", "1", false, "")}, nil, "unpause"); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, f, old, 2*time.Minute)
	for _, n := range []string{"w-0", "w-1"} {
		if got := readRoot(t, f, n, e2eFile); got != "v2" {
			t.Errorf("%s after unpause: %q", n, got)
		}
	}
}

// TestBadCommitNeverReachesNodes (5): an invalid MachineConfig is reported
// on stoker/fleet with its file and field; nodes keep the last good
// config; the fix rolls out.
func TestBadCommitNeverReachesNodes(t *testing.T) {
	t.Parallel()
	f := newFleet(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	addNodes(t, f, worker("w-0", "a"))
	v := waitConverged(t, f, "", 2*time.Minute)
	good := poolOf(v, "worker").Config

	bad := fileMC("51-bad", "worker", "/usr/bin/evil", "pwned")
	if _, err := f.Commit("main", map[string]string{
		"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2"),
		"machineconfigs/51-bad.yaml": bad,
	}, nil, "bad: write under /usr"); err != nil {
		t.Fatal(err)
	}
	v, err := f.WaitFor(context.Background(), time.Minute, func(v *fleetview.FleetView) bool {
		return len(poolOf(v, "worker").Errors) > 0
	}, nil)
	if err != nil {
		t.Fatalf("bad commit not reported: %v\n%s", err, table(v))
	}
	errs := poolOf(v, "worker").Errors
	if !strings.Contains(errs[0].String(), "51-bad.yaml") {
		t.Errorf("error does not name the file: %v", errs[0].String())
	}
	time.Sleep(5 * interval)
	v, _ = f.Status(context.Background())
	if c := poolOf(v, "worker").Config; c != good {
		t.Errorf("pool config moved to %s on a bad commit, want %s", c, good)
	}
	if _, err := os.Stat(filepath.Join(f.Root("w-0"), "/usr/bin/evil")); err == nil {
		t.Error("the bad file reached the node")
	}
	if got := readRoot(t, f, "w-0", e2eFile); got != "v1" {
		t.Errorf("node moved on a bad commit: %q", got)
	}

	if _, err := f.Commit("main", nil, []string{"machineconfigs/51-bad.yaml"}, "fix: drop the bad MC"); err != nil {
		t.Fatal(err)
	}
	v = waitConverged(t, f, good, 2*time.Minute)
	if len(poolOf(v, "worker").Errors) != 0 {
		t.Errorf("errors stay after the fix: %v", poolOf(v, "worker").Errors)
	}
	if got := readRoot(t, f, "w-0", e2eFile); got != "v2" {
		t.Errorf("fix did not roll out: %q", got)
	}
}

// TestDriftDegradesAndRecovers (6): a managed file edited on the node makes
// it Degraded with a finding; putting it back makes it Done again.
func TestDriftDegradesAndRecovers(t *testing.T) {
	t.Parallel()
	f := newFleet(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	addNodes(t, f, worker("w-0", "a"))
	waitConverged(t, f, "", 2*time.Minute)
	target := filepath.Join(f.Root("w-0"), e2eFile)
	if err := os.WriteFile(target, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := f.WaitFor(context.Background(), time.Minute, func(v *fleetview.FleetView) bool {
		n := nodeOf(v, "w-0")
		return n.State == api.StateDegraded && len(n.Drift) > 0
	}, nil)
	if err != nil {
		t.Fatalf("drift not reported: %v\n%s", err, table(v))
	}
	if d := nodeOf(v, "w-0").Drift[0]; d.Path != e2eFile || d.Expected == d.Found {
		t.Errorf("drift finding %+v", d)
	}
	if !poolOf(v, "worker").Degraded {
		t.Error("pool not degraded")
	}
	if err := os.WriteFile(target, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	v = waitConverged(t, f, "", time.Minute)
	if n := nodeOf(v, "w-0"); len(n.Drift) != 0 {
		t.Errorf("drift stays after restore: %+v", n.Drift)
	}
}

// TestAgentKilledMidApply (7): SIGKILL while the node is Working; the
// restarted agent finishes the update.
func TestAgentKilledMidApply(t *testing.T) {
	t.Parallel()
	repo := simpleRepo("1", false, "v1")
	// A file outside the policy: the change needs a (simulated) reboot,
	// which gives the kill a wider window.
	repo["machineconfigs/60-reboot.yaml"] = fileMC("60-reboot", "worker", "/etc/e2e-reboot.conf", "r1")
	f := newFleet(t, map[string]map[string]string{"main": repo})
	addNodes(t, f, worker("w-0", "a"))
	v := waitConverged(t, f, "", 2*time.Minute)
	old := poolOf(v, "worker").Config
	r0, _ := f.Report("w-0")

	if _, err := f.Commit("main", map[string]string{"machineconfigs/60-reboot.yaml": fileMC("60-reboot", "worker", "/etc/e2e-reboot.conf", "r2")}, nil, "reboot change"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := f.Report("w-0")
		if err == nil && r.State == api.StateWorking {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("w-0 never reported Working")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.Agent("w-0").Kill()
	t.Log("killed the agent while Working")
	if _, err := f.StartAgent("w-0"); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, f, old, 2*time.Minute)
	if got := readRoot(t, f, "w-0", "/etc/e2e-reboot.conf"); got != "r2" {
		t.Errorf("after recovery: %q", got)
	}
	if r, _ := f.Report("w-0"); r != nil && r0 != nil && r.BootID == r0.BootID {
		t.Errorf("boot id unchanged (%s): the reboot-requiring change did not (simulate a) reboot", r.BootID)
	}
}

// TestGitOutage (8): with the Git server down, nodes keep their config and
// agents keep running; a commit made meanwhile rolls out when it returns.
func TestGitOutage(t *testing.T) {
	t.Parallel()
	f := newFleet(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	addNodes(t, f, worker("w-0", "a"), worker("w-1", "b"))
	v := waitConverged(t, f, "", 2*time.Minute)
	old := poolOf(v, "worker").Config

	f.StopGit()
	if _, err := f.Commit("main", map[string]string{"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2")}, nil, "during outage"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * interval)
	for _, n := range []string{"w-0", "w-1"} {
		if !f.Agent(n).Running() {
			t.Errorf("agent %s exited during the outage", n)
		}
		if got := readRoot(t, f, n, e2eFile); got != "v1" {
			t.Errorf("%s lost its config during the outage: %q", n, got)
		}
	}
	if !f.Hub().Running() {
		t.Error("hub exited during the outage")
	}
	if err := f.StartGitAgain(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, f, old, 2*time.Minute)
	for _, n := range []string{"w-0", "w-1"} {
		if got := readRoot(t, f, n, e2eFile); got != "v2" {
			t.Errorf("%s did not catch up: %q", n, got)
		}
	}
}

// TestMaxUnavailableAndZones (2): while a change rolls through four
// workers with maxUnavailable 1, no moment has two nodes unavailable, and
// nodes start in zone order.
func TestMaxUnavailableAndZones(t *testing.T) {
	t.Parallel()
	f := newFleet(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	// Names in the reverse of zone order, so name order cannot pass.
	addNodes(t, f, worker("n-1", "zone-d"), worker("n-2", "zone-c"), worker("n-3", "zone-b"), worker("n-4", "zone-a"))
	v := waitConverged(t, f, "", 3*time.Minute)
	old := poolOf(v, "worker").Config

	var mu sync.Mutex
	var order []string
	maxSeen := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		started := map[string]bool{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			targets := statusTargets(f)
			unavailable := 0
			for _, n := range []string{"n-1", "n-2", "n-3", "n-4"} {
				r, err := f.Report(n)
				desired := targets[n]
				if err != nil || desired == "" {
					continue
				}
				if desired != old && !started[n] {
					started[n] = true
					mu.Lock()
					order = append(order, n)
					mu.Unlock()
				}
				if r.State != api.StateDone || r.CurrentConfig != desired {
					unavailable++
				}
			}
			mu.Lock()
			maxSeen = max(maxSeen, unavailable)
			mu.Unlock()
		}
	}()
	if _, err := f.Commit("main", map[string]string{"machineconfigs/50-e2e.yaml": fileMC("50-e2e", "worker", e2eFile, "v2")}, nil, "v2"); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, f, old, 3*time.Minute)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if maxSeen > 1 {
		t.Errorf("%d nodes unavailable at once, maxUnavailable is 1", maxSeen)
	}
	if want := []string{"n-4", "n-3", "n-2", "n-1"}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("rollout order %v, want zone order %v", order, want)
	}
}

// statusTargets reads every node's desiredConfig on stoker/status from
// the bare repo, in the branch's layout (1: nodes/; 2: rollouts/).
func statusTargets(f *demo.Fleet) map[string]string {
	out := map[string]string{}
	ls, err := gitserver.Git(f.RepoPath(), nil, "ls-tree", "-r", "--name-only", api.StatusBranch)
	if err != nil {
		return out
	}
	tree := fstest.MapFS{}
	for _, name := range strings.Fields(ls) {
		if name != api.LayoutFile && !strings.HasPrefix(name, "nodes/") && !strings.HasPrefix(name, api.RolloutsDir+"/") {
			continue
		}
		data, err := gitserver.Git(f.RepoPath(), nil, "show", api.StatusBranch+":"+name)
		if err != nil {
			return out
		}
		tree[name] = &fstest.MapFile{Data: []byte(data + "\n")}
	}
	version, err := api.ReadLayout(tree, api.StatusBranch)
	if err != nil {
		return out
	}
	targets, err := api.StatusNodeTargets(tree, version)
	if err != nil {
		return out
	}
	for name, nt := range targets {
		out[name] = nt.DesiredConfig
	}
	return out
}

// TestCanaryByBranch (4): a change pushed to canary reaches only the
// canary pool; merging it into main promotes it; git revert on main rolls
// the workers back.
func TestCanaryByBranch(t *testing.T) {
	t.Parallel()
	repo := simpleRepo("1", false, "v1")
	repo["pools/worker-canary.yaml"] = pool("worker-canary", "1", false, "    stoker.dev/source-branch: canary\n")
	f := newFleet(t, map[string]map[string]string{"main": repo})
	git := gitWork(t, f)
	git("push", "--quiet", "origin", "main:canary")
	addNodes(t, f, worker("w-0", "a"), demo.Node{Name: "c-0", Labels: map[string]string{
		"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/worker-canary": "", "topology.kubernetes.io/zone": "a"}})
	v := waitConverged(t, f, "", 2*time.Minute)
	if nodeOf(v, "c-0").Pool != "worker-canary" {
		t.Fatalf("c-0 is in pool %q", nodeOf(v, "c-0").Pool)
	}
	contents := func() (string, string) {
		return readRoot(t, f, "w-0", e2eFile), readRoot(t, f, "c-0", e2eFile)
	}
	waitFiles := func(step, wantW, wantC string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			w, c := contents()
			v, _ := f.Status(context.Background())
			if w == wantW && c == wantC && demo.Converged(v) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: worker %q canary %q, want %q %q\n%s", step, w, c, wantW, wantC, table(v))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	git("checkout", "--quiet", "-b", "canary", "origin/canary")
	if err := os.WriteFile(filepath.Join(workDir(git), "machineconfigs/50-e2e.yaml"), []byte(fileMC("50-e2e", "worker", e2eFile, "v2")), 0o644); err != nil {
		t.Fatal(err)
	}
	git("commit", "--quiet", "-am", "v2 on canary")
	git("push", "--quiet", "origin", "canary")
	waitFiles("push to canary", "v1", "v2")
	time.Sleep(3 * interval)
	if w, _ := contents(); w != "v1" {
		t.Fatalf("canary change reached the worker pool: %q", w)
	}

	git("checkout", "--quiet", "main")
	git("merge", "--quiet", "--no-ff", "-m", "promote canary", "canary")
	git("push", "--quiet", "origin", "main")
	waitFiles("merge to main", "v2", "v2")

	git("revert", "--no-edit", "-m", "1", "HEAD")
	git("push", "--quiet", "origin", "main")
	waitFiles("revert on main", "v1", "v2")
	// And the canary follows main again.
	git("checkout", "--quiet", "canary")
	git("merge", "--quiet", "--ff-only", "main")
	git("push", "--quiet", "origin", "canary")
	waitFiles("canary back to main", "v1", "v1")
}

func workDir(git func(...string) string) string {
	return strings.TrimSpace(git("rev-parse", "--show-toplevel"))
}
