//go:build fleetbench

package fleetbench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"stoker.dev/stoker/agent"
	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	examplesrepo "stoker.dev/stoker/examples-repo"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/gitserver"
)

var (
	nodes       = flag.Int("nodes", 20, "agents to run")
	interval    = flag.Duration("interval", 5*time.Second, "agent --interval (the bound scales with it)")
	hubInterval = flag.Duration("hub-interval", 0, "hub --interval (0: the agents' interval)")
	idleFor     = flag.Duration("idle", 30*time.Second, "steady-state window measured")
	ramp        = flag.Duration("ramp", 0, "agents are started evenly over this long (0: one interval, at most 25 agents a second)")
	heartbeat   = flag.Duration("heartbeat", 0, "agent heartbeat (0: the agent's default)")
	sampleEvery = flag.Int("sample-every", 0, "every k-th agent talks through a byte-counting proxy (0: about 20 sampled)")
	sharedRepo  = flag.Bool("shared-repo", false, "reports in the polled repository (--reports-repo = --repo), not in their own")
	keep        = flag.String("keep", "", "write the hub's log (debug) and the agents' log there, kept after the run")
)

// batches is the rollout's step count: examples-repo's worker pool has
// maxUnavailable 25 %.
const batches = 4

type fleet struct {
	t        *testing.T
	dir      string
	url      string // the git daemon
	srv      *gitserver.Server
	daemon   *exec.Cmd
	hub      *exec.Cmd
	metrics  string // the hub's /metrics URL
	hubPx    *proxy
	agPx     *proxy
	sampled  int
	reader   gitsource.Repo
	files    map[string]string
	started  atomic.Int64
	lastSeen *fleetview.FleetView
	lastHead string
	events   *events
	agentLog io.Writer
}

func TestFleet(t *testing.T) {
	bin := os.Getenv("STOKER_BIN")
	if bin == "" {
		t.Skip("STOKER_BIN unset (make bench-fleet builds it)")
	}
	n := *nodes
	if *hubInterval <= 0 {
		*hubInterval = *interval
	}
	if *ramp <= 0 {
		*ramp = max(*interval, time.Duration(n)*time.Second/25)
	}
	every := *sampleEvery
	if every <= 0 {
		every = max(1, n/20)
	}
	bound := time.Duration(batches) * (*interval + 2*time.Second)
	layout := "reports in their own repo (--reports-repo)"
	if *sharedRepo {
		layout = "reports in the polled repo (--reports-repo = --repo)"
	}
	t.Logf("nodes %d, agent interval %s, hub interval %s, ramp %s, heartbeat %s, %s, every %d-th agent through a counting proxy; bound %d × (interval + 2s) = %s",
		n, *interval, *hubInterval, *ramp, orDefault(*heartbeat), layout, every, batches, bound)

	f := &fleet{t: t, dir: t.TempDir(), events: newEvents(), agentLog: io.Discard}
	if *keep != "" {
		lf, err := os.Create(keepFile(f.dir, "agents.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lf.Close() })
		f.agentLog = lf
		t.Logf("logs kept in %s (hub.log, agents.log)", *keep)
	}
	f.startGit()
	f.startHub(bin)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	starting := make(chan struct{})
	t.Cleanup(func() { cancel(); <-starting; wg.Wait(); f.agPx.close(); f.hubPx.close() })
	start := time.Now()
	rnd := rand.New(rand.NewSource(1))
	f.sampled = (n + every - 1) / every
	go func() {
		defer close(starting)
		for i := 0; i < n && ctx.Err() == nil; i++ {
			url := f.url
			if i%every == 0 {
				url = "git://" + f.agPx.addr() + "/config.git"
			}
			o := f.agentOptions(i, url)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := agent.Run(ctx, o); err != nil && ctx.Err() == nil {
					t.Errorf("agent %s: %v", o.Node, err)
				}
			}()
			f.started.Add(1)
			// Even spacing with a little noise, as machines boot.
			next := start.Add(time.Duration(float64(*ramp) * (float64(i+1) + rnd.Float64()*0.5) / float64(n)))
			time.Sleep(time.Until(next))
		}
	}()

	// First convergence: every node joins (a rollout from no config).
	firstDeadline := max(time.Minute, *ramp+3*bound+time.Minute)
	took, ok := f.waitFleet(ctx, "first convergence", firstDeadline, start, func(v *fleetview.FleetView) bool {
		return demo.Converged(v) && len(v.Nodes) == n
	})
	if ok {
		t.Logf("first convergence: all %d Done %s after the first agent started (ramp %s)", n, took.Round(time.Second), *ramp)
	}

	// Steady state.
	s0 := f.sample()
	time.Sleep(*idleFor)
	s1 := f.sample()
	f.reportIdle(s0, s1, n)
	t.Logf("machine load average (1 min): %s before the window, %s after", s0.load, s1.load)

	// Rollout: one MachineConfig change to the worker pool.
	before := f.workerConfig()
	f.events.reset()
	pushed := time.Now()
	r0 := f.sample()
	f.files["machineconfigs/50-infra-motd.yaml"] = strings.ReplaceAll(f.files["machineconfigs/50-infra-motd.yaml"], "infra%20node.", "infra%20node%20(rollout).")
	if _, err := gitserver.CommitFiles(f.srv.Path("config.git"), "main", map[string]string{"machineconfigs/50-infra-motd.yaml": f.files["machineconfigs/50-infra-motd.yaml"]}, nil, "rollout"); err != nil {
		t.Fatal(err)
	}
	rolloutDeadline := max(time.Minute, 3*bound)
	took, ok = f.waitFleet(ctx, "rollout", rolloutDeadline, pushed, func(v *fleetview.FleetView) bool {
		return demo.Converged(v) && len(v.Nodes) == n && workerOf(v) != before && workerOf(v) != ""
	})
	r1 := f.sample()
	verdict := "within"
	if took > bound {
		verdict = "OVER"
	}
	if ok {
		t.Logf("rollout: push -> all %d Done %s, %s the bound batches × (interval + 2s) = %s", n, took.Round(time.Second), verdict, bound)
	}
	f.reportWindow("rollout", r0, r1, n)
	t.Logf("machine load average (1 min): %s at the push, %s at the end", r0.load, r1.load)
	f.reportSteps(pushed)
	f.events.report(t, "rollout", pushed)
	hubPhases(t, keepFile(f.dir, "hub.log"), pushed, 3*time.Second)
	rss, hwm := memKiB(f.hub.Process.Pid)
	t.Logf("hub memory after rollout: RSS %s, peak %s, Go heap in use %s", mib(rss), mib(hwm), mib(int64(r1.metrics["go_memstats_heap_inuse_bytes"]/1024)))
	if took > bound && ok {
		t.Errorf("rollout took %s, over the bound %s", took.Round(time.Second), bound)
	}
}

func orDefault(d time.Duration) string {
	if d <= 0 {
		return "default"
	}
	return d.String()
}

func (f *fleet) startGit() {
	t := f.t
	repos := filepath.Join(f.dir, "repos")
	f.srv = &gitserver.Server{Kind: gitserver.Daemon, Root: repos}
	if err := os.MkdirAll(repos, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"config.git", "reports.git"} {
		if err := f.srv.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	f.files = seedFiles(t)
	if _, err := gitserver.CommitFiles(f.srv.Path("config.git"), "main", f.files, nil, "seed"); err != nil {
		t.Fatal(err)
	}
	addr, daemon := serveGit(t, repos)
	f.daemon = daemon
	f.url = "git://" + addr + "/config.git"
	var err error
	if f.hubPx, err = newProxy(addr); err != nil {
		t.Fatal(err)
	}
	if f.agPx, err = newProxy(addr); err != nil {
		t.Fatal(err)
	}
	if f.reader, err = gitsource.Open(gitsource.Options{URL: f.url, WorkDir: filepath.Join(f.dir, "reader")}); err != nil {
		t.Fatal(err)
	}
}

// seedFiles is the config repo: examples-repo's worker pool, its
// disruption policy and one MachineConfig for workers.
func seedFiles(tb testing.TB) map[string]string {
	files := map[string]string{}
	for _, p := range []string{"pools/worker.yaml", "machineconfiguration.yaml", "machineconfigs/50-infra-motd.yaml"} {
		data, err := examplesrepo.FS.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		files[p] = string(data)
	}
	files["machineconfigs/50-infra-motd.yaml"] = strings.ReplaceAll(files["machineconfigs/50-infra-motd.yaml"], "role: infra", "role: worker")
	return files
}

// serveGit serves the repositories under repos over git:// on loopback
// and returns the address once it accepts connections.
func serveGit(tb testing.TB, repos string) (string, *exec.Cmd) {
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		tb.Fatal(err)
	}
	port := freePort(tb)
	// git daemon listens with a backlog of 5 (hard-coded): a fleet's
	// bursts of connections overflow it, the kernel drops the SYNs and
	// clients stall in TCP's retransmit backoff (1 s, 3 s, 7 s, ...) past
	// their timeouts. So systemd-socket-activate holds the listening
	// socket (backlog SOMAXCONN) and runs `git daemon --inetd` per
	// connection, as inetd would; its children's CPU is its own.
	daemon := exec.Command("systemd-socket-activate", "--listen=127.0.0.1:"+strconv.Itoa(port), "--accept", "--inetd",
		filepath.Join(strings.TrimSpace(string(execPath)), "git-daemon"), "--inetd", "--export-all", "--base-path="+repos, "--enable=receive-pack", repos)
	daemon.SysProcAttr = ownSession
	if err := daemon.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, daemon
		}
		if time.Now().After(deadline) {
			tb.Fatalf("git server on %s: not listening after 1m: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ownSession starts the hub and the Git server in sessions of their own:
// with the kernel's autogroup scheduling every session gets an equal share
// of the CPU, and in a real fleet they are machines of their own, not
// slices of the harness's one.
var ownSession = &syscall.SysProcAttr{Setsid: true}

// loadavg is the machine's 1-minute load average (the harness shares it).
func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (f *fleet) startHub(bin string) {
	t := f.t
	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	f.metrics = "http://" + listen + "/metrics"
	args := []string{"hub", "--repo", "git://" + f.hubPx.addr() + "/config.git", "--interval", hubInterval.String(),
		"--work-dir", filepath.Join(f.dir, "hub"), "--listen", listen, "--log-level", "debug"}
	// stoker hub requires --reports-repo; the config repo's URL keeps
	// the reports there (-shared-repo).
	reports := "git://" + f.hubPx.addr() + "/reports.git"
	if *sharedRepo {
		reports = "git://" + f.hubPx.addr() + "/config.git"
	}
	args = append(args, "--reports-repo", reports)
	f.hub = exec.Command(bin, args...)
	logf, err := os.Create(keepFile(f.dir, "hub.log"))
	if err != nil {
		t.Fatal(err)
	}
	f.hub.Stdout, f.hub.Stderr = logf, logf
	f.hub.SysProcAttr = ownSession
	if err := f.hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.hub.Process.Kill(); f.hub.Wait() })
}

func (f *fleet) agentOptions(i int, url string) agent.Options {
	name := fmt.Sprintf("node-%05d", i)
	root := filepath.Join(f.dir, "nodes", name, "root")
	for _, d := range []string{"etc", "home/core", "var"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			f.t.Error(err)
		}
	}
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000:core:/home/core:/bin/bash\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\ncore:x:1000:\n"), 0o644)
	reports := strings.TrimSuffix(url, "config.git") + "reports.git"
	if *sharedRepo {
		reports = url
	}
	return agent.Options{RepoURL: url, ReportsRepoURL: reports, Node: name, Root: root, StateDir: filepath.Join(f.dir, "nodes", name, "state"),
		Labels: map[string]string{"node-role.kubernetes.io/worker": ""}, Interval: *interval, Heartbeat: *heartbeat,
		StartSpread: *interval, Reboot: "simulate", Drain: "none", OSBackend: "none", DriftInterval: time.Hour, NoInotify: true, Version: "fleetbench",
		Log: f.events.logger(f.agentLog)}
}

// waitFleet polls stoker/fleet (a ref check every 2 s, a fetch only when
// it moved) until ok, or the deadline: then it logs what it saw (nodes by
// state, pool counts) and fails the test, returning false.
func (f *fleet) waitFleet(ctx context.Context, what string, deadline time.Duration, since time.Time, ok func(*fleetview.FleetView) bool) (time.Duration, bool) {
	t0 := time.Now()
	var lastErr error
	for {
		head, err := f.reader.Head(ctx, api.FleetBranch)
		if err == nil && head != f.lastHead {
			v, err := fleetview.ReadFleet(ctx, f.reader)
			if err == nil {
				f.lastSeen, f.lastHead = v, head
			}
			lastErr = err
		} else if err != nil {
			lastErr = err
		}
		if f.lastSeen != nil && ok(f.lastSeen) {
			return time.Since(since), true
		}
		if time.Since(t0) > deadline {
			f.t.Errorf("%s: not after %s (started %d agents; fleet: %s; last error: %v)", what, deadline.Round(time.Second),
				f.started.Load(), describe(f.lastSeen), lastErr)
			return time.Since(since), false
		}
		time.Sleep(2 * time.Second)
	}
}

func describe(v *fleetview.FleetView) string {
	if v == nil {
		return "never read"
	}
	states := map[string]int{}
	for _, n := range v.Nodes {
		s := string(n.State)
		if n.State == api.StateDone && n.CurrentConfig != n.DesiredConfig {
			s += "(behind)"
		}
		states[s]++
	}
	keys := make([]string, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, states[k]))
	}
	for _, p := range v.Pools {
		parts = append(parts, fmt.Sprintf("pool %s %d/%d updated, %d unavailable", p.Name, p.UpdatedMachineCount, p.MachineCount, p.UnavailableMachineCount))
	}
	return fmt.Sprintf("%d nodes: %s", len(v.Nodes), strings.Join(parts, ", "))
}

func workerOf(v *fleetview.FleetView) string {
	for _, p := range v.Pools {
		if p.Name == "worker" {
			return p.Config
		}
	}
	return ""
}

func (f *fleet) workerConfig() string {
	if f.lastSeen == nil {
		return ""
	}
	return workerOf(f.lastSeen)
}

func (f *fleet) sample() sample {
	m, err := scrape(f.metrics)
	if err != nil {
		f.t.Logf("hub metrics: %v", err)
	}
	return sample{at: time.Now(), hub: cpu(f.hub.Process.Pid), agents: cpu(os.Getpid()), git: cpu(f.daemon.Process.Pid),
		hubProxy: f.hubPx.snapshot(), agProxy: f.agPx.snapshot(), metrics: m, load: loadavg()}
}

// reportIdle logs the steady state: CPU per component (in cores, and per
// node per poll), bytes per agent poll and per hub loop, hub loops.
func (f *fleet) reportIdle(s0, s1 sample, n int) {
	t := f.t
	secs := s1.at.Sub(s0.at).Seconds()
	polls := float64(n) * secs / interval.Seconds()
	total := 0.0
	for _, c := range []struct {
		name string
		d    time.Duration
	}{{"hub", s1.hub - s0.hub}, {"agents", s1.agents - s0.agents}, {"git daemon", s1.git - s0.git}} {
		total += c.d.Seconds() / secs
		t.Logf("idle %s: %.3f cores, %.0f µs per node per poll", c.name, c.d.Seconds()/secs, float64(c.d.Microseconds())/polls)
	}
	t.Logf("idle total: %.3f cores (target ≤ 1)", total)
	ag := s1.agProxy.sub(s0.agProxy)
	sampledPolls := float64(f.sampled) * secs / interval.Seconds()
	if sampledPolls > 0 {
		t.Logf("idle bytes per agent poll: %.0f B down, %.0f B up, %.2f connections (%d agents sampled)",
			float64(ag.down)/sampledPolls, float64(ag.up)/sampledPolls, float64(ag.conns)/sampledPolls, f.sampled)
	}
	loops := s1.allLoops() - s0.allLoops()
	if loops > 0 {
		hp := s1.hubProxy.sub(s0.hubProxy)
		t.Logf("idle hub at %d nodes: %.0f loops (%.0f skipped: no ref moved), %.1f ms CPU per loop, %.0f B down and %.0f B up per loop, %.1f connections per loop",
			n, loops, s1.loops("skipped")-s0.loops("skipped"), float64((s1.hub-s0.hub).Microseconds())/1000/loops,
			float64(hp.down)/loops, float64(hp.up)/loops, float64(hp.conns)/loops)
	}
	rss, hwm := memKiB(f.hub.Process.Pid)
	t.Logf("idle hub memory: RSS %s, peak %s, Go heap in use %s", mib(rss), mib(hwm), mib(int64(s1.metrics["go_memstats_heap_inuse_bytes"]/1024)))
	arss, _ := memKiB(os.Getpid())
	t.Logf("agents' process RSS: %s (%.2f MiB per agent, harness included)", mib(arss), float64(arss)/1024/math.Max(1, float64(n)))
}

// reportWindow logs what one window (the rollout) cost each component.
func (f *fleet) reportWindow(what string, s0, s1 sample, n int) {
	secs := s1.at.Sub(s0.at).Seconds()
	f.t.Logf("%s window %.0fs: hub %.1f s CPU (%.2f cores), agents %.1f s (%.2f cores), git daemon %.1f s (%.2f cores)", what, secs,
		(s1.hub - s0.hub).Seconds(), (s1.hub-s0.hub).Seconds()/secs, (s1.agents - s0.agents).Seconds(), (s1.agents-s0.agents).Seconds()/secs,
		(s1.git - s0.git).Seconds(), (s1.git-s0.git).Seconds()/secs)
	ag := s1.agProxy.sub(s0.agProxy)
	if f.sampled > 0 {
		f.t.Logf("%s bytes per agent: %.0f B down, %.0f B up, %.1f connections (%d sampled)", what,
			float64(ag.down)/float64(f.sampled), float64(ag.up)/float64(f.sampled), float64(ag.conns)/float64(f.sampled), f.sampled)
	}
	hp := s1.hubProxy.sub(s0.hubProxy)
	f.t.Logf("%s hub: %.0f loops, %.0f B down, %.0f B up", what, s1.allLoops()-s0.allLoops(), float64(hp.down), float64(hp.up))
	_ = n
}

// reportSteps logs the hub's rollout steps after since, from its log:
// when each was written and how many nodes it advanced.
func (f *fleet) reportSteps(since time.Time) {
	data, err := os.ReadFile(keepFile(f.dir, "hub.log"))
	if err != nil {
		f.t.Logf("hub log: %v", err)
		return
	}
	var steps []string
	for _, l := range strings.Split(string(data), "\n") {
		i := strings.Index(l, "rollout worker")
		if !strings.HasPrefix(l, `time="`) || i < 0 {
			continue
		}
		at, err := time.Parse(time.RFC3339, l[6:strings.IndexByte(l[6:], '"')+6])
		if err != nil || at.Before(since.Truncate(time.Second)) {
			continue
		}
		// The line names up to 10 nodes, then "(+N more)".
		count := strings.Count(l[i:], "node-")
		if j := strings.Index(l[i:], "(+"); j >= 0 {
			var more int
			if _, err := fmt.Sscanf(l[i+j:], "(+%d more)", &more); err == nil {
				count += more
			}
		}
		steps = append(steps, fmt.Sprintf("+%s %d", at.Sub(since).Round(time.Second), count))
	}
	f.t.Logf("rollout steps (time after push, nodes advanced): %s", strings.Join(steps, ", "))
}
