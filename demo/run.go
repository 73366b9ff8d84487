package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"stoker.dev/stoker/api"
	examplesrepo "stoker.dev/stoker/examples-repo"
	"stoker.dev/stoker/reconciler"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/gitserver"
)

// Options are `stoker demo`'s flags.
type Options struct {
	// Binary is the stoker executable to start the hub and agents from
	// (default: this process's executable).
	Binary string
	// Dir is the demo's directory; empty makes a fresh temporary one,
	// removed at the end unless KeepRunning.
	Dir string
	// KeepRunning leaves the fleet up after the story until ctx ends.
	KeepRunning bool
	// Interval is the hub's and agents' poll interval (default 1s).
	Interval time.Duration
	// Out receives the story (default stdout).
	Out io.Writer
}

// The demo's nodes: one master and three workers in three zones, so the
// worker pool (maxUnavailable 25% → 1) updates one zone at a time.
var demoNodes = []Node{
	{Name: "master-0", Labels: map[string]string{"node-role.kubernetes.io/master": "", "topology.kubernetes.io/zone": "zone-a"}},
	{Name: "worker-a", Labels: map[string]string{"node-role.kubernetes.io/worker": "", "topology.kubernetes.io/zone": "zone-a"}},
	{Name: "worker-b", Labels: map[string]string{"node-role.kubernetes.io/worker": "", "topology.kubernetes.io/zone": "zone-b"}},
	{Name: "worker-c", Labels: map[string]string{"node-role.kubernetes.io/worker": "", "topology.kubernetes.io/zone": "zone-c"}},
}

const (
	sysctlMC   = "machineconfigs/50-worker-sysctl.yaml"
	sysctlPath = "/etc/sysctl.d/90-stoker.conf"
	sshdPath   = "/etc/ssh/sshd_config.d/40-stoker-hardening.conf"
)

// Run runs the demo story; it returns when the story ends (or, with
// KeepRunning, when ctx ends).
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("demo: find the stoker binary: %w", err)
		}
		o.Binary = exe
	}
	removeDir := false
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "stoker-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		o.Dir, removeDir = dir, !o.KeepRunning
	}
	s := &story{o: o, out: o.Out}
	fleet, err := NewFleet(o.Dir, o.Binary, o.Interval)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	s.f = fleet
	defer func() {
		fleet.Close()
		if removeDir {
			os.RemoveAll(o.Dir)
		}
	}()
	if err := s.run(ctx); err != nil {
		s.say("\nThe demo stopped: %v\nLogs: %s", err, filepath.Join(o.Dir, "logs"))
		if removeDir {
			removeDir = false
			s.say("(kept %s for a look)", o.Dir)
		}
		return err
	}
	s.say("\nThe story took %s.", time.Since(start).Round(time.Second))
	s.where()
	if o.KeepRunning {
		s.say("\nThe fleet keeps running (--keep-running); Ctrl-C stops it. %s stays.", o.Dir)
		<-ctx.Done()
		return nil
	}
	if removeDir {
		s.say("\nStopping the fleet and removing %s (use --keep-running to poke at it).", o.Dir)
	}
	return nil
}

type story struct {
	o   Options
	out io.Writer
	f   *Fleet
	// shown is the fleet commit printed last.
	shown string
}

func (s *story) say(format string, args ...any) { fmt.Fprintf(s.out, format+"\n", args...) }

func (s *story) step(n int, title string) { s.say("\n== %d. %s ==", n, title) }

func (s *story) table(v *fleetview.FleetView) {
	if v.Commit == s.shown {
		return
	}
	s.shown = v.Commit
	var b bytes.Buffer
	fmt.Fprintf(&b, "-- stoker/fleet @ %s (%s)\n", shortSHA(v.Commit), time.Now().Format("15:04:05"))
	_ = fleetview.WritePoolTable(&b, v.Pools, time.Now())
	b.WriteString("\n")
	_ = fleetview.WriteNodeTable(&b, v.Nodes, time.Now())
	s.out.Write(b.Bytes())
}

func (s *story) run(ctx context.Context) error {
	f := s.f
	s.step(1, "a config repo on a local Git server, every commit signed")
	var names []string
	for _, n := range demoNodes {
		names = append(names, n.Name)
	}
	keys, err := f.EnableSigning(names...)
	if err != nil {
		return err
	}
	s.say("Generated keys in %s: a reviewer (the hub's --trust-root), the hub's signing key\n"+
		"(the agents' --trust-hub-key), and one report key per node (listed in %s).",
		keys.Dir, reconciler.DefaultNodeSignersPath)
	if _, err := f.Seed(examplesrepo.FS, "main", "import examples-repo"); err != nil {
		return err
	}
	if err := f.Branch("canary", "main"); err != nil {
		return err
	}
	s.say("Seeded %s (main from examples-repo, signed by the reviewer; canary branched from main).", f.RepoURL)

	s.step(2, "a hub and four agents, each its own process and root")
	if _, err := f.StartHub(); err != nil {
		return err
	}
	for _, n := range demoNodes {
		if _, err := f.AddNode(n); err != nil {
			return err
		}
		s.say("  agent %-9s root %s", n.Name, f.Root(n.Name))
	}
	s.say("Waiting for the first rollout (the kernel arguments need a reboot; agents simulate it)...")
	v, err := f.WaitFor(ctx, 60*time.Second, Converged, s.table)
	if err != nil {
		return err
	}
	s.say("All nodes Done.")

	s.step(3, "git push a change; the worker pool rolls it out one node at a time")
	old, err := f.ReadFile("main", sysctlMC)
	if err != nil {
		return err
	}
	if !strings.Contains(old, "1024") {
		return errors.New("demo: the sysctl MachineConfig changed shape; update the demo")
	}
	before := poolConfig(v, "worker")
	commit, err := f.Commit("main", map[string]string{sysctlMC: strings.Replace(old, "1024", "4096", 1)}, nil,
		"sysctl: raise net.core.somaxconn to 4096")
	if err != nil {
		return err
	}
	s.say("Pushed %s to main: net.core.somaxconn 1024 → 4096 (policy: restart systemd-sysctl, no reboot).", shortSHA(commit))
	maxSeen, limit := 0, 0
	_, err = f.WaitFor(ctx, 60*time.Second, func(v *fleetview.FleetView) bool {
		p := pool(v, "worker")
		return p != nil && p.Config != before && Converged(v)
	}, func(v *fleetview.FleetView) {
		if p := pool(v, "worker"); p != nil {
			unavailable := 0
			for _, n := range v.Nodes {
				if n.Pool == "worker" && (n.State != api.StateDone || n.CurrentConfig != n.DesiredConfig) {
					unavailable++
				}
			}
			maxSeen = max(maxSeen, unavailable)
			limit = 1
		}
		s.table(v)
	})
	if err != nil {
		return err
	}
	s.say("Rolled out. At most %d worker(s) were updating at once (maxUnavailable: 25%% of 3 → %d).", maxSeen, limit)

	s.step(4, "look at a node")
	for _, p := range []string{sysctlPath, sshdPath} {
		data, err := os.ReadFile(filepath.Join(f.Root("worker-a"), p))
		if err != nil {
			return fmt.Errorf("demo: read %s on worker-a: %w", p, err)
		}
		s.say("worker-a:%s\n%s", p, indent(string(data)))
	}

	kargs, err := os.ReadFile(f.KernelArgsFile("worker-a"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	s.say("worker-a's kernel command line (kept by a grubby stand-in in %s):\n    %s", filepath.Join(s.o.Dir, "bin"), strings.TrimSpace(string(kargs)))

	s.step(5, "tamper with a managed file")
	target := filepath.Join(f.Root("worker-b"), sysctlPath)
	good, err := os.ReadFile(target)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(target, []byte("net.core.somaxconn = 1\n"), 0o644); err != nil {
		return fmt.Errorf("demo: tamper: %w", err)
	}
	s.say("Wrote net.core.somaxconn = 1 into worker-b:%s behind Stoker's back.", sysctlPath)
	degraded := func(v *fleetview.FleetView) bool {
		for _, n := range v.Nodes {
			if n.Name == "worker-b" && (n.State == api.StateDegraded || len(n.Drift) > 0) {
				return true
			}
		}
		return false
	}
	_, err = f.WaitFor(ctx, 20*time.Second, degraded, s.table)
	if err != nil {
		s.say("worker-b did not report drift within 20s: this build's agent has no drift monitor yet.")
	} else {
		s.say("worker-b is Degraded: its report names the file and both digests.")
	}
	if err := os.WriteFile(target, good, 0o644); err != nil {
		return fmt.Errorf("demo: put the file back: %w", err)
	}
	s.say("Put the file back.")
	if _, err := f.WaitFor(ctx, 60*time.Second, func(v *fleetview.FleetView) bool { return !degraded(v) && Converged(v) }, s.table); err != nil {
		return err
	}
	s.say("worker-b is Done again.")

	s.step(6, "an unsigned push, and a forged stoker/status commit")
	unsigned, err := gitserver.CommitFiles(f.RepoPath(), "main", map[string]string{sysctlMC: strings.Replace(old, "1024", "8", 1)}, nil,
		"sysctl: somaxconn 8 (pushed without review, unsigned)")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	s.say("Pushed %s to main without a signature.", shortSHA(unsigned))
	refused := func(v *fleetview.FleetView) bool {
		p := pool(v, "worker")
		return p != nil && len(p.Errors) > 0 && p.Errors[0].Commit == unsigned
	}
	v, err = f.WaitFor(ctx, 60*time.Second, refused, nil)
	if err != nil {
		return err
	}
	s.say("The hub did not render it; stoker/fleet says why (and %s counts it):\n    %s",
		"stoker_hub_unverified_commits_total", pool(v, "worker").Errors[0].Message)
	forged, err := gitserver.CommitFiles(f.RepoPath(), api.StatusBranch, map[string]string{"nodes/worker-a.yaml": "name: worker-a\npool: worker\ndesiredConfig: rendered-worker-forged\n"}, nil,
		"forged: not the hub")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	s.say("Committed %s straight onto stoker/status, as a node's stolen credential could.", shortSHA(forged))
	if _, err := f.WaitFor(ctx, 60*time.Second, func(*fleetview.FleetView) bool {
		msg, err := gitserver.Git(f.RepoPath(), nil, "log", "-1", "--format=%s", api.StatusBranch)
		return err == nil && strings.Contains(msg, "supersede unverified")
	}, nil); err != nil {
		return err
	}
	s.say("The hub committed over it, signed, restoring its own state; agents accept only hub-signed commits\n" +
		"(--trust-hub-key) that descend from the last one they acted on, so no node ever applied it.")
	if _, err := f.Commit("main", map[string]string{sysctlMC: strings.Replace(old, "1024", "4096", 1)}, nil,
		"sysctl: back to the reviewed 4096 (signed)"); err != nil {
		return err
	}
	if _, err := f.WaitFor(ctx, 60*time.Second, func(v *fleetview.FleetView) bool { return !refused(v) && Converged(v) }, s.table); err != nil {
		return err
	}
	s.say("The reviewer's signed commit renders again; the fleet is Done.")
	return nil
}

func (s *story) where() {
	f := s.f
	s.say(`
Where everything is:
  directory     %s
  config repo   %s  (bare repo: %s)
  reports repo  %s  (stoker/reports/<node>: --reports-repo)
  status        %s status --repo %s
  clone it      git clone %s && git -C config log --oneline origin/stoker/fleet
  node roots    %s
  logs          %s`, s.o.Dir, f.RepoURL, f.RepoPath(), f.ReportsRepoURL, s.o.Binary, f.RepoURL, f.RepoURL,
		filepath.Join(s.o.Dir, "nodes", "<node>", "root"), filepath.Join(s.o.Dir, "logs"))
	if a := f.Agent(canaryNode); a != nil && s.o.KeepRunning {
		if cmd, err := f.RelabelCommand(canaryNode, canaryLabel, ""); err == nil {
			s.say(`
Move %s into the worker-canary pool (a node's labels are its agent's --labels
flag here; in Kubernetes: kubectl label node %s %s=):
  kill %d    # the demo's agent of %s
  %s &
then push to canary (git switch canary && git merge main, change, push) and
only %s moves.`, canaryNode, canaryNode, canaryLabel, a.Pid(), canaryNode, cmd, canaryNode)
		}
	}
}

// The node the closing words move into the canary pool, and the label.
const (
	canaryNode  = "worker-c"
	canaryLabel = "node-role.kubernetes.io/worker-canary"
)

func pool(v *fleetview.FleetView, name string) *api.PoolFleet {
	for i := range v.Pools {
		if v.Pools[i].Name == name {
			return &v.Pools[i]
		}
	}
	return nil
}

func poolConfig(v *fleetview.FleetView, name string) string {
	if p := pool(v, name); p != nil {
		return p.Config
	}
	return ""
}

func shortSHA(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
