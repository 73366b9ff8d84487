package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/test/gitserver"
)

// benchDeadline bounds the benchmark's setup and every single step of it
// (a poll, a `git ls-remote`): past it the benchmark fails saying which
// step hung, instead of hanging `make bench`.
const benchDeadline = 2 * time.Minute

// BenchmarkIdlePoll measures an idle agent's poll — one pass of the
// update loop with the status head unchanged and nothing to do, what the
// agent does every --interval — beside a whole `git ls-remote` process
// asking the same git daemon for the same branch, in the same run, as
// issue 19 asks. CPU is getrusage: RUSAGE_SELF around the in-process poll,
// the child's rusage (RUSAGE_CHILDREN, from wait4) for git.
//
//   - agent-µs/poll, ls-remote-µs: CPU per poll and per ls-remote;
//   - x-ls-remote: their ratio (goal <= 0.5);
//   - wire-B/poll, ls-remote-wire-B: bytes both ways on the loopback
//     connection, counted by a relay (gitserver.Counter) in a separate,
//     untimed pass.
//
// refs is how many refs the polled repository holds: 1 is a status repo
// of its own (the layout that keeps reports out of the polled repo); 201
// adds 200 stoker/reports/<node> branches, all in one repo. go-git speaks
// protocol v1, so every poll downloads every ref.
func BenchmarkIdlePoll(b *testing.B) {
	for _, reports := range []int{0, 200} {
		b.Run(fmt.Sprintf("refs=%d", reports+1), func(b *testing.B) { benchIdlePoll(b, reports) })
	}
}

func benchIdlePoll(b *testing.B, reports int) {
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	defer cancel()
	stop := watchdog(fmt.Sprintf("BenchmarkIdlePoll setup (refs=%d)", reports+1))
	defer stop()
	srv := gitserver.New(b, gitserver.Daemon)
	publishBench(b, srv, reports)
	url := srv.URL("cfg")
	a := idleAgent(b, ctx, url)

	// The bytes both ways, through a counting relay, untimed.
	relay := gitserver.NewCounter(b, srv)
	rurl := relay.URL("cfg")
	pa := idleAgent(b, ctx, rurl)
	const wirePolls = 5
	relay.Quiet()
	before := relay.Sent() + relay.Received()
	for i := 0; i < wirePolls; i++ {
		idlePoll(b, pa)
	}
	relay.Quiet()
	wire := float64(relay.Sent()+relay.Received()-before) / wirePolls
	before = relay.Sent() + relay.Received()
	lsRemote(b, rurl)
	relay.Quiet()
	lsWire := float64(relay.Sent() + relay.Received() - before)

	var agentCPU, lsCPU time.Duration
	stop() // each poll and ls-remote below has its own deadline
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := selfCPU()
		idlePoll(b, a)
		agentCPU += selfCPU() - before
		lsCPU += lsRemote(b, url)
	}
	b.StopTimer()
	b.ReportMetric(float64(agentCPU.Microseconds())/float64(b.N), "agent-µs/poll")
	b.ReportMetric(float64(lsCPU.Microseconds())/float64(b.N), "ls-remote-µs")
	b.ReportMetric(float64(agentCPU)/float64(lsCPU), "x-ls-remote")
	b.ReportMetric(wire, "wire-B/poll")
	b.ReportMetric(lsWire, "ls-remote-wire-B")
}

// watchdog panics, naming what, when it is not stopped within
// benchDeadline: every network step has its own context deadline, this
// catches whatever else in the setup could hang. Stopping it twice is
// fine.
func watchdog(what string) (stop func()) {
	t := time.AfterFunc(benchDeadline, func() {
		panic(fmt.Sprintf("%s: no progress after %s", what, benchDeadline))
	})
	return func() { t.Stop() }
}

// idlePoll runs one pass and fails unless it was idle.
func idlePoll(b *testing.B, a *agent) {
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	defer cancel()
	idle, err := a.lockedTick(ctx)
	if err != nil || !idle {
		b.Fatalf("idle poll: idle %v, err %v", idle, err)
	}
}

// lsRemote runs `git ls-remote url refs/heads/stoker/status` (the branch
// the agent checks) and returns the CPU it took.
func lsRemote(b *testing.B, url string) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "ls-remote", url, "refs/heads/"+api.StatusBranch)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("git ls-remote %s (deadline %s): %v: %s", url, benchDeadline, err, out.String())
	}
	if !strings.Contains(out.String(), api.StatusBranch) {
		b.Fatalf("git ls-remote %s: no %s in %q", url, api.StatusBranch, out.String())
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// publishBench writes c1 as node's target on stoker/status of repo cfg
// and adds reports branches stoker/reports/bench-<i> at the same commit.
func publishBench(b *testing.B, srv *gitserver.Server, reports int) {
	head := srv.SeedRepo(b, "cfg", statusFiles(b, c1, nil), api.StatusBranch)
	var refs strings.Builder
	for i := 0; i < reports; i++ {
		fmt.Fprintf(&refs, "create refs/heads/%s %s\n", api.ReportsBranch(fmt.Sprintf("bench-%d", i)), head)
	}
	cmd := exec.Command("git", "update-ref", "--stdin")
	cmd.Dir, cmd.Stdin = srv.Path("cfg"), strings.NewReader(refs.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("create report branches: %v: %s", err, out)
	}
}

// idleAgent is an agent under its own root and state dir, converged on
// what publishBench wrote. A requested reboot is simulated as the agent
// binary does it (a new boot id), then the agent is started again.
func idleAgent(b *testing.B, ctx context.Context, url string) *agent {
	root := b.TempDir()
	must(b, os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755))
	must(b, os.WriteFile(filepath.Join(root, "etc/passwd"),
		[]byte("root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:Core:/var/home/core:/bin/bash\n"), 0o644))
	must(b, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\ncore:x:1000:\n"), 0o644))
	state := b.TempDir()
	var rebooted bool
	o := Options{RepoURL: url, Node: node, Root: root, StateDir: state, WorkDir: b.TempDir(),
		Labels: map[string]string{"node-role.kubernetes.io/worker": ""}, Interval: time.Hour,
		Systemd: &nodeops.RootSystemd{Root: root}, OS: mustBackend(b), Version: "bench", Drain: "none",
		// Never the real re-exec: it would restart the benchmark binary.
		Rebooter: &nodeops.SimulateRebooter{StateDir: state, Exec: func(string, []string, []string) error {
			rebooted = true
			return nil
		}}}
	var last error
	for boots := 0; boots < 5; boots++ {
		a, err := newAgent(ctx, &o)
		must(b, err)
		rebooted = false
		for i := 0; i < 20 && !rebooted; i++ {
			idle, err := a.lockedTick(ctx)
			if err == nil && idle && a.st.Current == c1.Name && a.st.Stage == StageIdle {
				return a
			}
			if ctx.Err() != nil {
				b.Fatalf("agent did not converge on %s within %s: %v", c1.Name, benchDeadline, errors.Join(err, ctx.Err()))
			}
			last = fmt.Errorf("idle %v, stage %s, current %q, err %v", idle, a.st.Stage, a.st.Current, err)
		}
	}
	b.Fatalf("agent did not converge on %s: %v", c1.Name, last)
	return nil
}
