package demo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/gitserver"
)

// RepoName is the bare config repository every fleet serves;
// ReportsRepoName holds the agents' stoker/reports/<node> branches
// (--reports-repo), so the repository agents poll keeps few refs.
const (
	RepoName        = "config.git"
	ReportsRepoName = "reports.git"
)

// Node describes one agent of a fleet.
type Node struct {
	Name string
	// Labels select the node's pool (node-role.kubernetes.io/worker=) and
	// zone (topology.kubernetes.io/zone).
	Labels map[string]string
}

// Proc is one stoker process of the fleet (the hub or an agent).
type Proc struct {
	Name string
	Args []string
	// Log is the file its stdout and stderr go to.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	if p.Running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
	// Children (git-daemon's forks) may outlive the leader.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// Stop sends SIGTERM, waits up to 2m (an agent rolls back an interrupted
// apply and pushes its last report first), then kills.
func (p *Proc) Stop() {
	if !p.Running() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	case <-time.After(2 * time.Minute):
		p.Kill()
	}
}

// Signal sends sig to the process's group without waiting; Done is
// closed once the process has exited.
func (p *Proc) Signal(sig syscall.Signal) {
	if p.Running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Fleet is a local fleet under Dir: a Git server, a hub, agents.
type Fleet struct {
	// Dir holds everything: repos/, hub/, nodes/<node>/{root,state}, logs/.
	Dir string
	// Binary is the stoker executable started for the hub and agents.
	Binary string
	// Interval is the hub's and agents' --interval.
	Interval time.Duration
	Git      *gitserver.Server
	// RepoURL is the config repo's git:// URL; ReportsRepoURL the
	// reports repo's (--reports-repo).
	RepoURL, ReportsRepoURL string

	mu     sync.Mutex
	hub    *Proc
	agents map[string]*Proc
	nodes  map[string]Node
	reader gitsource.Repo
	daemon *Proc
	keys   *Keys // signing.go; nil = unsigned fleet
}

// NewFleet creates dir's layout, starts a git daemon on 127.0.0.1 and an
// empty bare config repo. The caller Closes the fleet.
func NewFleet(dir, binary string, interval time.Duration) (*Fleet, error) {
	if interval <= 0 {
		interval = time.Second
	}
	for _, d := range []string{"repos", "logs", "nodes", "hub"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create fleet dir %s: %w", d, err)
		}
	}
	if err := writeGrubby(dir); err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "repos")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start git server: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := &gitserver.Server{Kind: gitserver.Daemon, Root: root, Addr: addr}
	for _, r := range []string{RepoName, ReportsRepoName} {
		if err := srv.Create(r); err != nil {
			return nil, err
		}
	}
	f := &Fleet{Dir: dir, Binary: binary, Interval: interval, Git: srv, RepoURL: srv.URL(RepoName), ReportsRepoURL: srv.URL(ReportsRepoName),
		agents: map[string]*Proc{}, nodes: map[string]Node{}}
	if err := f.StartGitAgain(context.Background()); err != nil {
		return nil, err
	}
	return f, nil
}

// RepoPath is the bare config repo on disk.
func (f *Fleet) RepoPath() string { return f.Git.Path(RepoName) }

// ReportsRepoPath is the bare reports repo on disk.
func (f *Fleet) ReportsRepoPath() string { return f.Git.Path(ReportsRepoName) }

// Seed commits every file of fsys onto branch of the config repo.
func (f *Fleet) Seed(fsys fs.FS, branch, message string) (string, error) {
	files := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		files[path] = string(data)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("seed %s: %w", branch, err)
	}
	return f.Commit(branch, files, nil, message)
}

// Commit commits files (path → content) and deletes remove on branch of
// the config repo, as a push would, and returns the new commit.
func (f *Fleet) Commit(branch string, files map[string]string, remove []string, message string) (string, error) {
	f.mu.Lock()
	k := f.keys
	f.mu.Unlock()
	key := ""
	if k != nil {
		key = k.Reviewer
	}
	c, err := gitserver.CommitFilesSigned(f.RepoPath(), branch, k.signFiles(files), remove, message, key)
	if err != nil {
		return "", fmt.Errorf("commit to %s: %w", branch, err)
	}
	return c, nil
}

// ReadFile reads path at branch's head of the config repo.
func (f *Fleet) ReadFile(branch, path string) (string, error) {
	out, err := gitserver.Git(f.RepoPath(), nil, "show", branch+":"+path)
	if err != nil {
		return "", fmt.Errorf("read %s:%s: %w", branch, path, err)
	}
	return out, nil
}

func (f *Fleet) start(name string, args ...string) (*Proc, error) {
	return f.startCmd(name, f.Binary, nil, args...)
}

func (f *Fleet) startCmd(name, bin string, env []string, args ...string) (*Proc, error) {
	logPath := filepath.Join(f.Dir, "logs", name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = f.Dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// The fleet dies with its parent, even on SIGKILL of the parent; each
	// process leads its own group so Stop reaches its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Args: args, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// StartHub starts `stoker hub` against the config repo; extra flags are
// appended.
func (f *Fleet) StartHub(extra ...string) (*Proc, error) {
	args := append([]string{"hub", "--repo", f.RepoURL, "--reports-repo", f.ReportsRepoURL, "--interval", f.Interval.String(),
		"--work-dir", filepath.Join(f.Dir, "hub")}, f.keys.hubFlags()...)
	args = append(args, extra...)
	p, err := f.start("hub", args...)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.hub = p
	f.mu.Unlock()
	return p, nil
}

// Hub returns the hub process, nil before StartHub.
func (f *Fleet) Hub() *Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hub
}

// Root is node's root directory; State its state dir.
func (f *Fleet) Root(node string) string { return filepath.Join(f.Dir, "nodes", node, "root") }

// KernelArgsFile holds node's kernel command line, as the grubby stand-in
// the agents use keeps it.
func (f *Fleet) KernelArgsFile(node string) string {
	return filepath.Join(f.Dir, "nodes", node, "kernel-args")
}

// State is node's --state-dir.
func (f *Fleet) State(node string) string { return filepath.Join(f.Dir, "nodes", node, "state") }

// AddNode prepares n's root (etc/passwd and etc/group with the core user
// as the current uid, so the agent can chown its ssh keys without
// privileges) and starts its agent.
func (f *Fleet) AddNode(n Node, extra ...string) (*Proc, error) {
	root := f.Root(n.Name)
	for _, d := range []string{"etc", "home/core", "var"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("prepare root of %s: %w", n.Name, err)
		}
	}
	uid, gid := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	passwd := "root:x:0:0:root:/root:/bin/sh\ncore:x:" + uid + ":" + gid + ":core:/home/core:/bin/bash\n"
	group := "root:x:0:\ncore:x:" + gid + ":\n"
	if os.Getgid() == 0 {
		group = "root:x:0:core\n"
	}
	if os.Getuid() == 0 {
		passwd = "root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000:core:/home/core:/bin/bash\n"
		group = "root:x:0:\ncore:x:1000:\n"
	}
	for name, content := range map[string]string{"etc/passwd": passwd, "etc/group": group} {
		p := filepath.Join(root, name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("prepare root of %s: %w", n.Name, err)
		}
	}
	f.mu.Lock()
	f.nodes[n.Name] = n
	f.mu.Unlock()
	return f.StartAgent(n.Name, extra...)
}

// StartAgent (re)starts the agent of a node added with AddNode.
func (f *Fleet) StartAgent(node string, extra ...string) (*Proc, error) {
	f.mu.Lock()
	n, ok := f.nodes[node]
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("start agent: unknown node %s", node)
	}
	env, args := f.agentCommand(n)
	p, err := f.startCmd("agent-"+n.Name, f.Binary, env, append(args, extra...)...)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.agents[n.Name] = p
	f.mu.Unlock()
	return p, nil
}

// agentCommand is the environment and arguments of n's agent: its labels
// are the --labels flag, so relabelling a node is restarting its agent.
func (f *Fleet) agentCommand(n Node) (env, args []string) {
	var labels []string
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	args = []string{"agent", "--repo", f.RepoURL, "--reports-repo", f.ReportsRepoURL, "--node", n.Name,
		"--root", f.Root(n.Name), "--state-dir", f.State(n.Name),
		"--labels", strings.Join(labels, ","), "--interval", f.Interval.String(),
		"--reboot", "simulate", "--os-backend", "grubby", "--drain", "none"}
	args = append(args, f.keys.agentFlags(n.Name)...)
	env = []string{"PATH=" + filepath.Join(f.Dir, "bin") + string(os.PathListSeparator) + os.Getenv("PATH"),
		"STOKER_DEMO_KARGS=" + f.KernelArgsFile(n.Name)}
	return env, args
}

// RelabelCommand is a shell command line that starts node's agent again
// with label k=v added (v "" for a role label): what a person runs, after
// stopping the demo's agent of that node, to move it into another pool.
func (f *Fleet) RelabelCommand(node, k, v string) (string, error) {
	f.mu.Lock()
	n, ok := f.nodes[node]
	f.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("relabel: unknown node %s", node)
	}
	labels := map[string]string{k: v}
	for lk, lv := range n.Labels {
		labels[lk] = lv
	}
	env, args := f.agentCommand(Node{Name: n.Name, Labels: labels})
	words := append(env, append([]string{f.Binary}, args...)...)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " "), nil
}

// shellQuote quotes w for a POSIX shell when it needs it.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@+") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// Branch creates branch at from's head in the config repo, so it shares
// from's history (git merge between them works as people expect).
func (f *Fleet) Branch(branch, from string) error {
	if _, err := gitserver.Git(f.RepoPath(), nil, "branch", "--", branch, from); err != nil {
		return fmt.Errorf("create branch %s from %s: %w", branch, from, err)
	}
	return nil
}

// Agent returns node's agent process.
func (f *Fleet) Agent(node string) *Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agents[node]
}

// Nodes lists the fleet's node names in order.
func (f *Fleet) Nodes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Status reads stoker/fleet through Git, as `stoker status` does.
func (f *Fleet) Status(ctx context.Context) (*fleetview.FleetView, error) {
	f.mu.Lock()
	if f.reader == nil {
		r, err := gitsource.Open(gitsource.Options{URL: f.RepoURL, WorkDir: filepath.Join(f.Dir, "status-cache")})
		if err != nil {
			f.mu.Unlock()
			return nil, fmt.Errorf("open %s: %w", f.RepoURL, err)
		}
		f.reader = r
	}
	r := f.reader
	f.mu.Unlock()
	return fleetview.ReadFleet(ctx, r)
}

// Report reads node's report.yaml from its report branch on disk.
func (f *Fleet) Report(node string) (*api.Report, error) {
	out, err := gitserver.Git(f.ReportsRepoPath(), nil, "show", api.ReportsBranch(node)+":"+api.ReportFile)
	if err != nil {
		return nil, fmt.Errorf("read report of %s: %w", node, err)
	}
	var r api.Report
	if err := yaml.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("read report of %s: %w", node, err)
	}
	return &r, nil
}

// Converged reports whether every pool with machines is updated, and every
// node is Done on its pool's config.
func Converged(v *fleetview.FleetView) bool {
	if v == nil {
		return false
	}
	cfg := map[string]string{}
	for _, p := range v.Pools {
		cfg[p.Name] = p.Config
		if p.MachineCount > 0 && (!p.Updated || p.Degraded) {
			return false
		}
	}
	for _, n := range v.Nodes {
		if n.State != api.StateDone || n.CurrentConfig == "" || n.CurrentConfig != cfg[n.Pool] || n.DesiredConfig != n.CurrentConfig {
			return false
		}
	}
	return len(v.Nodes) > 0
}

// WaitFor polls the fleet status every 250ms until cond holds, ctx ends,
// or timeout passes; each new fleet commit is handed to onChange (may be
// nil). It returns the last view.
func (f *Fleet) WaitFor(ctx context.Context, timeout time.Duration, cond func(*fleetview.FleetView) bool, onChange func(*fleetview.FleetView)) (*fleetview.FleetView, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last *fleetview.FleetView
	seen := ""
	for {
		v, err := f.Status(ctx)
		if err == nil {
			last = v
			if v.Commit != seen {
				seen = v.Commit
				if onChange != nil {
					onChange(v)
				}
			}
			if cond(v) {
				return v, nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("condition not met")
			}
			return last, fmt.Errorf("wait for fleet after %s: %w", timeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Close stops every process (agents first, then the hub) and the Git
// server. The directory stays.
func (f *Fleet) Close() {
	f.mu.Lock()
	procs := []*Proc{}
	for _, p := range f.agents {
		procs = append(procs, p)
	}
	hub := f.hub
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
	if hub != nil {
		hub.Stop()
	}
	f.StopGit()
}

// StopGit stops the Git server; the repositories stay on disk.
func (f *Fleet) StopGit() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.daemon != nil {
		f.daemon.Stop()
		f.daemon = nil
	}
}

// StartGitAgain starts `git daemon` on the fleet's address and root:
// first from NewFleet, then again after StopGit, as a Git server coming
// back from an outage would. It retries while the port is still held for
// up to 2m. The daemon runs in its own process group because `git daemon`
// forks git-daemon and each connection forks again: stopping it stops the
// whole group.
func (f *Fleet) StartGitAgain(ctx context.Context) error {
	_, port, err := net.SplitHostPort(f.Git.Addr)
	if err != nil {
		return fmt.Errorf("restart git daemon: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := f.startCmd("git-daemon", "git", []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}, "daemon", "--reuseaddr", "--listen=127.0.0.1", "--port="+port,
			"--export-all", "--base-path="+f.Git.Root, "--enable=receive-pack", "--informative-errors", f.Git.Root)
		if err != nil {
			return fmt.Errorf("restart git daemon: %w", err)
		}
		for time.Now().Before(deadline) && p.Running() {
			c, err := net.DialTimeout("tcp", f.Git.Addr, time.Second)
			if err == nil {
				c.Close()
				f.mu.Lock()
				f.daemon = p
				f.mu.Unlock()
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.Stop() // exited or deaf: the port is still held; try again
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("restart git daemon on %s: not listening", f.Git.Addr)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Pid is the process id, for people who stop it by hand.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }
