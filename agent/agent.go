package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/trust"
)

// Options configure the agent. main binds flags into it; tests inject the
// host seams (Systemd, OS, Rebooter, Drainer) and Git repos directly.
type Options struct {
	// RepoURL is the config repository; StatusRepoURL (stoker/status) and
	// ReportsRepoURL (stoker/reports/<node>) default to it.
	RepoURL        string
	StatusRepoURL  string
	ReportsRepoURL string
	Auth           gitsource.AuthOptions
	// Node is this node's name.
	Node string
	// Root is the host's root ("/"); StateDir holds the agent's state;
	// WorkDir the Git cache (default <StateDir>/git).
	Root     string
	StateDir string
	WorkDir  string
	// Offline treats Root as a directory tree without a running systemd
	// (see nodeops.Host). It is implied by Reboot "simulate" with a Root
	// other than "/"; otherwise a Root other than "/" is a live host whose
	// systemd must be reachable under it, or the agent refuses to start.
	Offline bool
	// Labels are reported for pool membership on hosts without Kubernetes.
	Labels map[string]string
	// Interval between status ref checks; Heartbeat between unchanged
	// reports.
	Interval  time.Duration
	Heartbeat time.Duration
	// StartSpread: an agent that starts with no update in progress waits
	// a random part of it before its first poll, so a fleet started at
	// once (a DaemonSet rollout, every host restarted) does not poll in
	// lockstep and burst the Git server with connections; an agent
	// resuming an update (after its reboot) polls at once. Zero polls at
	// once; `stoker agent` sets it to Interval.
	StartSpread time.Duration
	// CoreUser owns the ssh keys (default core).
	CoreUser string
	// MaxFileBytes and MaxConfigBytes bound a file's and a config's
	// decompressed contents; zero means the hub's defaults
	// (api.DefaultMaxFileBytes, api.DefaultMaxConfigBytes).
	MaxFileBytes   int64
	MaxConfigBytes int64
	// AutoRollback rolls back to the last good config when validation
	// after a reboot fails (MCO leaves the node Degraded instead).
	AutoRollback bool
	// HookTimeout bounds each lifecycle hook's run (default
	// nodeops.DefaultHookTimeout); see hooks.go.
	HookTimeout time.Duration
	// RetryFailed is how long a config whose update failed is left alone
	// before it is tried again (default 10 × Interval).
	RetryFailed time.Duration
	// DriftInterval is how often the drift monitor checks everything, on
	// top of its inotify watches (default 5m).
	DriftInterval time.Duration
	// NoInotify turns drift watching off: drift is checked every
	// DriftInterval only. For many agents in one process (the fleet load
	// harness), which would exhaust the user's inotify instances.
	NoInotify bool
	// DrainDeadline is how long a drain may keep failing before the node
	// is reported Degraded (it keeps retrying, as MCO's drain controller
	// does); measured from the first attempt, persisted across restarts.
	// Default DefaultDrainDeadline.
	DrainDeadline time.Duration

	// Drain (none, exec:CMD), Reboot (systemd, exec:CMD, simulate) and
	// OSBackend (auto, rpm-ostree, bootc, grubby, none) name the
	// implementations built when the matching field below is nil.
	Drain     string
	Reboot    string
	OSBackend string
	Drainer   nodeops.Drainer
	Rebooter  nodeops.Rebooter
	Systemd   nodeops.Systemd
	OS        nodeops.OSBackend
	// Annotator, when set (Kubernetes mode), mirrors state onto the Node.
	Annotator nodeops.NodeAnnotator
	// Status and Reports replace the repositories opened from the URLs.
	Status  gitsource.Repo
	Reports gitsource.Repo

	// TrustHubKeys are files with the hub's public keys (SSH .pub lines,
	// allowed_signers, or an OpenPGP keyring). When set, every
	// stoker/status commit the agent acts on must be signed by one of
	// them; any other head is refused and reported Degraded, and the node
	// keeps its config. Two keys during a hub key rotation.
	TrustHubKeys []string
	// SignKeyFile is this node's SSH private key; when set, every report
	// commit is signed with it (the hub's --require-signed-reports checks
	// it against the config repo's node signers, principal = node name).
	SignKeyFile string

	// Once makes Run return when the node is idle (converged, refused or
	// failed) or a reboot was requested, after flushing the report.
	Once bool
	// Version is reported as agentVersion.
	Version string
	// Listen, when set, serves /metrics and /healthz on this address
	// ("127.0.0.1:0" picks a port; OnListen gets the bound address).
	Listen   string
	OnListen func(addr string)
	// ReportBackoff is the first retry delay of a failed report push.
	ReportBackoff time.Duration
	// Backoff paces retries after a failed pass (Git unreachable, a
	// failed drain): each delay grows by Factor up to Cap, with Jitter so
	// a fleet does not retry in lockstep after an outage. A zero Duration
	// means the default: Interval, doubling up to 5m, jitter 0.5.
	Backoff wait.Backoff
	// Now replaces time.Now.
	Now func() time.Time
	// CrashAt is called at every step boundary with the point's name (see
	// CrashPoints); tests panic there to simulate a crash.
	CrashAt func(point string)
	Log     logrus.FieldLogger
}

// Crash points, in the order an update reaches them. Each is a boundary
// between two durable effects; the crash matrix test kills the agent at
// every one of them.
var CrashPoints = []string{
	"start", "recovered", "fetched", "desired-read",
	"config-kept", "planned",
	"drain-before", "drain-after", "drained",
	"apply-before", "apply-after", "applied",
	"actions-before", "actions-after",
	"reboot-before", "reboot-after",
	"boot-detected", "validated", "committing", "commit-after", "current-saved",
	"uncordon-before", "uncordon-after", "idle",
}

// ErrLocked is returned when another agent holds the state dir.
var ErrLocked = errors.New("state dir is in use by another agent")

type desired struct {
	head     string
	none     bool // no nodes/<me>.yaml (or no status branch) yet
	target   api.NodeTarget
	pool     *api.PoolTarget
	rendered *api.Rendered
	raw      []byte
	err      error // refusal reason: the node must not apply this
}

func (d *desired) name() string {
	if d == nil || d.none {
		return ""
	}
	return d.target.DesiredConfig
}

type agent struct {
	o         Options
	observer  *observer // nil without --listen
	log       logrus.FieldLogger
	applier   *nodeops.Applier
	hooks     *nodeops.HookRunner
	status    gitsource.Repo
	reporter  *Reporter
	st        State
	want      *desired
	recovered bool
	rebooted  bool // a reboot was requested in this process
	// mu is held by each pass of the update loop and by each drift
	// check, so the monitor never sees the agent's own writes.
	mu    sync.Mutex
	drift *driftMonitor
	// hubKeys, when set, must have signed every status head acted on.
	hubKeys *trust.Set
}

// Run runs the agent until ctx ends (or, with Once, until it is idle).
func Run(ctx context.Context, o Options) error {
	a, err := newAgent(ctx, &o)
	if err != nil {
		return err
	}
	unlock, err := lockDir(o.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	if a.observer, err = startObserver(sctx, &o); err != nil {
		return fmt.Errorf("agent: --listen: %w", err)
	}
	return a.run(ctx)
}

func newAgent(ctx context.Context, o *Options) (*agent, error) {
	if o.Node == "" {
		return nil, errors.New("agent: node name is required")
	}
	if err := api.ValidateNodeName(o.Node); err != nil {
		return nil, fmt.Errorf("agent: --node: %w (a systemd unit passing --node %%H uses the host name: make it a lowercase DNS name, or set --node in a drop-in)", err)
	}
	if err := api.ValidateLabels(o.Labels); err != nil {
		return nil, fmt.Errorf("agent: --labels: %w", err)
	}
	if o.HookTimeout < 0 {
		return nil, fmt.Errorf("agent: --hook-timeout %s: must not be negative (0 means the default, %s)", o.HookTimeout, nodeops.DefaultHookTimeout)
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.StateDir == "" {
		o.StateDir = nodeops.DefaultStateDir
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(o.StateDir, "git")
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.RetryFailed <= 0 {
		o.RetryFailed = 10 * o.Interval
	}
	if o.Backoff.Duration <= 0 {
		o.Backoff = DefaultBackoff(o.Interval)
	}
	if o.CoreUser == "" {
		o.CoreUser = api.DefaultCoreUser
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		o.Log = l
	}
	log := o.Log.WithField("node", o.Node)
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: create state dir %s: %w", o.StateDir, err)
	}
	if o.DrainDeadline <= 0 {
		o.DrainDeadline = DefaultDrainDeadline
	}
	host := nodeops.Host{Root: o.Root, Offline: o.Offline || (o.Root != "/" && o.Reboot == "simulate")}
	var err error
	if o.Systemd == nil {
		if o.Systemd, err = nodeops.NewSystemd(ctx, host); err != nil {
			return nil, fmt.Errorf("agent: --root %s is a live host, but %w (mount the host's /run below the root, "+
				"or pass --offline to only edit unit files in a directory tree)", o.Root, err)
		}
	}
	if d, ok := o.Systemd.(*nodeops.DBusSystemd); ok {
		log.WithFields(logrus.Fields{"socket": d.Socket, "version": d.Version}).Info("driving the host's systemd over D-Bus")
	}
	if o.OS == nil {
		if o.OS, err = nodeops.NewHostOSBackend(o.OSBackend, host); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	if o.Drainer == nil {
		if o.Drainer, err = nodeops.NewDrainer(o.Drain); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	if o.Rebooter == nil {
		spec := o.Reboot
		if spec == "" {
			spec = "systemd"
		}
		if o.Rebooter, err = nodeops.NewHostRebooter(spec, o.StateDir, host); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	var hubKeys *trust.Set
	if len(o.TrustHubKeys) > 0 {
		if hubKeys, err = trust.LoadFiles(o.TrustHubKeys...); err != nil {
			return nil, fmt.Errorf("agent: --trust-hub-key: %w", err)
		}
		if hubKeys.Empty() {
			return nil, fmt.Errorf("agent: --trust-hub-key %s: no keys", strings.Join(o.TrustHubKeys, ", "))
		}
	}
	var signer gitsource.Signer
	if o.SignKeyFile != "" {
		s, err := trust.LoadSSHSigner(o.SignKeyFile)
		if err != nil {
			return nil, fmt.Errorf("agent: --sign-key: %w", err)
		}
		signer = s
		log.WithField("key", s.Fingerprint()).Info("signing reports")
	}
	if o.Status == nil || o.Reports == nil {
		statusURL := firstNonEmpty(o.StatusRepoURL, o.RepoURL)
		reportsURL := firstNonEmpty(o.ReportsRepoURL, o.RepoURL)
		if statusURL == "" || reportsURL == "" {
			return nil, errors.New("agent: --repo is required")
		}
		if o.Status == nil {
			g, err := gitsource.Open(gitsource.Options{URL: statusURL, WorkDir: o.WorkDir, Auth: o.Auth, Logger: log, Signer: signer})
			if err != nil {
				return nil, fmt.Errorf("agent: %w", err)
			}
			o.Status = g
			if reportsURL == statusURL && o.Reports == nil {
				o.Reports = g
			}
		}
		if o.Reports == nil {
			g, err := gitsource.Open(gitsource.Options{URL: reportsURL, WorkDir: o.WorkDir, Auth: o.Auth, Logger: log, Signer: signer})
			if err != nil {
				return nil, fmt.Errorf("agent: %w", err)
			}
			o.Reports = g
		}
	}
	applier, err := nodeops.NewApplier(nodeops.ApplierOptions{Root: o.Root, StateDir: o.StateDir,
		CoreUser: o.CoreUser, Systemd: o.Systemd, OS: o.OS, Log: log,
		MaxFileBytes: o.MaxFileBytes, MaxConfigBytes: o.MaxConfigBytes})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	st, err := LoadState(o.StateDir)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	rb := DefaultBackoff(o.ReportBackoff)
	rb.Cap = time.Minute
	rep := NewReporter(ReporterOptions{Repo: o.Reports, Node: o.Node, Heartbeat: o.Heartbeat,
		Backoff: rb, Annotator: o.Annotator, Now: o.Now, Log: log})
	a := &agent{o: *o, log: log, applier: applier, status: o.Status, reporter: rep, st: st, hubKeys: hubKeys,
		hooks: nodeops.NewHookRunner(host, o.StateDir, o.HookTimeout)}
	a.drift = newDriftMonitor(a)
	return a, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// lockDir takes an exclusive lock on the state dir for this process.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock state dir %s: %w", dir, ErrLocked)
	}
	return func() { f.Close() }, nil
}

func (a *agent) crash(point string) {
	if a.o.CrashAt != nil {
		a.o.CrashAt(point)
	}
}

func (a *agent) run(ctx context.Context) error {
	a.crash("start")
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.reporter.Run(rctx) }()
	defer func() { cancel(); wg.Wait() }()
	if !a.o.Once {
		wg.Add(1)
		go func() { defer wg.Done(); a.drift.run(rctx) }()
	}
	if d := startDelay(a.o, a.st, rand.N[time.Duration]); d > 0 {
		a.log.WithField("delay", d.Round(time.Millisecond)).Debug("spreading the first poll")
		select {
		case <-ctx.Done():
			a.stop(ctx)
			return nil
		case <-time.After(d):
		}
	}
	backoff := a.o.Backoff
	for {
		idle, err := a.lockedTick(ctx)
		a.observer.step(err)
		if a.o.Once && idle {
			a.drift.check(ctx) // one drift check before the final report
		}
		retry := err != nil && retryable(err)
		delay := a.o.Interval
		if err != nil {
			delay = backoff.Step()
		} else {
			backoff = a.o.Backoff
		}
		if err != nil && ctx.Err() == nil {
			log := a.log.WithError(err)
			if retry {
				log = log.WithField("retry", delay)
			}
			log.Warn("agent step failed")
		}
		if a.o.Once && (idle || (err != nil && !retry) || a.rebooted || ctx.Err() != nil) {
			if a.rebooted {
				return nil
			}
			if ctx.Err() != nil {
				a.stop(ctx)
				return nil
			}
			fctx, fcancel := context.WithTimeout(ctx, time.Minute)
			ferr := a.reporter.Flush(fctx)
			fcancel()
			if err == nil {
				err = a.outcome()
			}
			return errors.Join(err, ferr)
		}
		if a.rebooted {
			// The machine goes down under us; wait for it.
			<-ctx.Done()
			a.stop(ctx)
			return nil
		}
		select {
		case <-ctx.Done():
			a.stop(ctx)
			return nil
		case <-time.After(delay):
		}
	}
}

// startDelay is how long the agent waits before its first poll: a
// random part (randN(n) in [0, n)) of StartSpread when nothing is in
// progress, else nothing.
func startDelay(o Options, st State, randN func(time.Duration) time.Duration) time.Duration {
	if o.Once || o.StartSpread <= 0 || st.Stage != StageIdle {
		return 0
	}
	return randN(o.StartSpread)
}

// ShutdownTimeout bounds the final report push after the agent is told to
// stop; it runs on a context that outlives the signal.
const ShutdownTimeout = 30 * time.Second

// stop runs once when ctx ends (SIGTERM): whatever the pass was doing has
// returned (an interrupted apply rolled itself back on a context of its
// own), the final report is pushed on a context that outlives the signal,
// bounded by ShutdownTimeout, and one line is logged.
func (a *agent) stop(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	a.mu.Lock()
	st := a.st
	a.mu.Unlock()
	log := a.log.WithFields(logrus.Fields{"stage": st.Stage, "rendered": orNone(st.Current), "cause": context.Cause(ctx)})
	if err := a.reporter.Flush(fctx); err != nil {
		log = log.WithError(err)
	}
	log.Info("agent stopping")
}

// DefaultBackoff is the retry pacing used when Options.Backoff is zero:
// first, doubling up to 5m, each delay stretched by up to 50 % at random.
func DefaultBackoff(first time.Duration) wait.Backoff {
	if first <= 0 {
		first = time.Second
	}
	return wait.Backoff{Duration: first, Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: 5 * time.Minute}
}

// retryable reports errors --once retries: transient Git failures
// (gitsource.IsRetryable). It stops on every other error, a blocked drain
// included (the drain deadline is counted across runs).
func retryable(err error) bool {
	return gitsource.IsRetryable(err)
}

// ErrDegraded is returned by Run with Once when the node ends Degraded (an
// update failed or was refused, validation fails, drift).
var ErrDegraded = errors.New("node is Degraded")

// outcome is Once's verdict on the final report.
func (a *agent) outcome() error {
	if r := a.reporter.Wanted(); r.State == api.StateDegraded {
		return fmt.Errorf("%w: %s", ErrDegraded, r.Reason)
	}
	return nil
}

// lockedTick runs tick holding the agent's lock, and has the drift
// monitor check again when the pass moved the state.
func (a *agent) lockedTick(ctx context.Context) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	before, wasRecovered := a.st, a.recovered
	idle, err := a.tick(ctx)
	if gitsource.IsDiskFull(err) {
		// The state dir (or the Git cache beside it) refuses writes: say
		// so through the report, which the reporter can push from memory.
		a.report(api.StateDegraded, fmt.Sprintf("cannot write the agent's state or Git cache under %s, the node keeps its config: %v", a.o.StateDir, err))
	}
	if a.st.Stage != before.Stage || a.st.Current != before.Current || a.recovered != wasRecovered {
		// Moved, or just recovered: the monitor's own first check may
		// have run before recovery and skipped the node.
		a.drift.Trigger()
	}
	return idle, err
}

// tick is one pass: recover once, refresh the desired config, then move
// the state machine as far as it goes without waiting.
func (a *agent) tick(ctx context.Context) (idle bool, err error) {
	if !a.recovered {
		if err := a.recover(ctx); err != nil {
			a.report(api.StateDegraded, err.Error())
			return false, err
		}
		a.recovered = true
		a.crash("recovered")
	}
	if err := a.refresh(ctx); err != nil {
		a.log.WithError(err).Warn("read desired config failed")
		if gitsource.IsDiskFull(err) {
			return false, err // reported Degraded, not Done at the old config
		}
		if a.want == nil {
			if a.st.Stage == StageIdle {
				return false, err
			}
		}
	}
	return a.advance(ctx)
}

// recover makes the persisted stage agree with the applier's journal
// after a crash or restart.
func (a *agent) recover(ctx context.Context) error {
	a.sweepTemp()
	if pgid, err := a.hooks.ReapOrphan(); err != nil {
		a.log.WithError(err).Warn("kill the hook a killed agent left running")
	} else if pgid != 0 {
		a.log.Warn(fmt.Sprintf("killed the hook (process group %d) a killed agent left running; its point runs again", pgid))
	}
	j, err := a.applier.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	applied := j != nil && j.State == nodeops.JournalApplied
	st := a.st
	switch st.Stage {
	case StageApplying:
		if applied {
			st.Stage = StageApplied // Apply finished; only the note was lost
		} else {
			st.Stage = StageDrained // an interrupted apply was rolled back
		}
	case StageApplied, StageRebooting:
		if !applied {
			a.log.WithField("stage", st.Stage).Warn("no applied journal for the stage; applying again")
			st.Stage = StageDrained
		}
	case StageIdle, StagePlanned, StageDrained:
		if applied {
			a.log.WithField("rendered", j.To).Warn("rolling back an applied config no update claims")
			if err := a.applier.Rollback(ctx); err != nil {
				return fmt.Errorf("recover: %w", err)
			}
		}
	}
	if st.Stage != a.st.Stage {
		a.log.WithFields(logrus.Fields{"from": a.st.Stage, "to": st.Stage}).Info("resuming after restart")
		return a.save(st)
	}
	return nil
}

func (a *agent) save(st State) error {
	if st.StatusCommit == "" {
		st.StatusCommit = a.st.StatusCommit
	}
	if err := saveState(a.o.StateDir, st); err != nil {
		return err
	}
	a.st = st
	return nil
}

// refresh checks the status ref and reads the node's target when it moved.
func (a *agent) refresh(ctx context.Context) error {
	head, err := a.status.Head(ctx, api.StatusBranch)
	if errors.Is(err, gitsource.ErrRefNotFound) {
		a.want = &desired{none: true}
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", api.StatusBranch, err)
	}
	if a.want != nil && a.want.head == head {
		return nil
	}
	// The fetch takes the branch as the check just saw it, without a ref
	// check of its own; when the hub pushed again in between it brings
	// the newer head, which is then the one read (a first, depth-1 fetch
	// holds only that commit).
	got, err := gitsource.FetchChecked(ctx, a.status, map[string]string{api.StatusBranch: head}, api.StatusBranch)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", api.StatusBranch, err)
	}
	if h := got[api.StatusBranch]; h != "" && h != head {
		head = h
		if a.want != nil && a.want.head == head {
			return nil
		}
	}
	a.crash("fetched")
	if a.hubKeys != nil {
		by, err := a.verifyStatus(ctx, head)
		if err != nil {
			var refused *trust.Refused
			if !errors.As(err, &refused) {
				return err
			}
			refusal := &unverifiedError{head: head, err: refused.Err}
			a.want = &desired{head: head, err: refusal}
			a.log.WithField("commit", short(head)).Warn(refusal.Error())
			return nil
		}
		a.log.WithFields(logrus.Fields{"commit": short(head), "key": by.Key}).Debug("status commit signed by the hub")
	}
	if last := a.st.StatusCommit; last != "" && last != head {
		ok, err := a.status.Descends(ctx, api.StatusBranch, last, head)
		if err != nil {
			return fmt.Errorf("check %s at %s descends from %s: %w", api.StatusBranch, short(head), short(last), err)
		}
		if !ok {
			refusal := &notForwardError{head: head, last: last}
			a.want = &desired{head: head, err: refusal}
			a.log.WithField("commit", short(head)).Warn(refusal.Error())
			return nil
		}
	}
	tree, err := a.status.Tree(ctx, head)
	if err != nil {
		return fmt.Errorf("read %s at %s: %w", api.StatusBranch, short(head), err)
	}
	d := readDesiredWith(tree, a.o.Node, a.validation())
	d.head = head
	if a.st.StatusCommit != head {
		// Acting on head from now on: only its descendants are accepted.
		st := a.st
		st.StatusCommit = head
		if err := a.save(st); err != nil {
			return err
		}
	}
	a.want = d
	log := a.log.WithField("commit", short(head))
	switch {
	case d.none:
		log.Info("no target for this node on the status branch yet")
	case d.err != nil:
		log.WithError(d.err).WithField("rendered", d.name()).Warn("refusing desired config")
	default:
		log.WithFields(logrus.Fields{"rendered": d.name(), "pool": d.target.Pool}).Info("read desired config")
	}
	a.crash("desired-read")
	return nil
}

// verifyStatus checks that head is signed by a trusted hub key.
func (a *agent) verifyStatus(ctx context.Context, head string) (trust.Verified, error) {
	h, ok := a.status.(interface{ History() trust.History })
	if !ok {
		return trust.Verified{}, fmt.Errorf("verify %s at %s: the status repository cannot show signatures", api.StatusBranch, short(head))
	}
	c, err := h.History().Commit(ctx, head)
	if err != nil {
		return trust.Verified{}, fmt.Errorf("verify %s at %s: %w", api.StatusBranch, short(head), err)
	}
	by, err := a.hubKeys.Verify(c.Signed, "")
	if err != nil {
		return trust.Verified{}, &trust.Refused{Commit: head, Err: err}
	}
	return by, nil
}

// unverifiedError refuses a stoker/status head not signed by a trusted
// hub key.
type unverifiedError struct {
	head string
	err  error
}

func (e *unverifiedError) Error() string {
	return fmt.Sprintf("refusing %s at %s: %v (not signed by a key in --trust-hub-key)", api.StatusBranch, e.head, e.err)
}

func (e *unverifiedError) Unwrap() error { return e.err }

// notForwardError refuses a stoker/status head that does not descend
// from the last status commit the node acted on.
type notForwardError struct{ head, last string }

func (e *notForwardError) Error() string {
	return fmt.Sprintf("refusing %s at %s: it does not descend from %s, the last status commit this node acted on "+
		"(the branch was rewound or replaced; roll back with a new commit instead)", api.StatusBranch, e.head, e.last)
}

// readDesired reads the node's target (nodes/<node>.yaml in layout 1, its
// pool's rollout in layout 2), its pool and rendered config from a status
// tree. Problems with them land in err: the node refuses them.
func readDesired(tree fs.FS, node, coreUser string) *desired {
	opts := api.DefaultValidationOptions()
	opts.CoreUser = coreUser
	return readDesiredWith(tree, node, opts)
}

// validation is what the agent checks a rendered config against: the
// hub's defaults, with the agent's core user and size limits.
func (a *agent) validation() api.ValidationOptions {
	opts := api.DefaultValidationOptions()
	opts.CoreUser = a.o.CoreUser
	opts.MaxFileBytes, opts.MaxConfigBytes = a.o.MaxFileBytes, a.o.MaxConfigBytes
	return opts
}

// readDesiredWith is readDesired validating with opts.
func readDesiredWith(tree fs.FS, node string, opts api.ValidationOptions) *desired {
	d := &desired{}
	version, err := api.ReadLayout(tree, api.StatusBranch)
	if err != nil {
		d.err = err
		return d
	}
	target, ok, err := api.StatusNodeTarget(tree, version, node)
	if err != nil {
		d.err = err
		return d
	}
	if !ok {
		d.none = true
		return d
	}
	d.target = target
	targetFile := api.NodeFile(node)
	if version >= api.StatusLayoutV2 {
		targetFile = api.RolloutCursorFile(target.Pool)
	}
	if d.target.DesiredConfig == "" {
		d.none = true
		return d
	}
	if d.target.Pool != "" {
		data, err := fs.ReadFile(tree, api.PoolFile(d.target.Pool))
		if err != nil {
			d.err = fmt.Errorf("read %s: %w", api.PoolFile(d.target.Pool), err)
			return d
		}
		var p api.PoolTarget
		if err := yaml.Unmarshal(data, &p); err != nil {
			d.err = fmt.Errorf("parse %s: %w", api.PoolFile(d.target.Pool), err)
			return d
		}
		d.pool = &p
	}
	name := d.target.DesiredConfig
	if strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		d.err = fmt.Errorf("%s: desiredConfig %q of node %s is not a rendered config name", targetFile, name, node)
		return d
	}
	// The size is checked before the file is read or parsed: Git's tree
	// gives it from the object header.
	if fi, err := fs.Stat(tree, api.RenderedFile(name)); err == nil && fi.Size() > api.MaxRenderedBytes {
		d.err = fmt.Errorf("%s is %d bytes, over the limit of %d for a rendered config; not read", api.RenderedFile(name), fi.Size(), api.MaxRenderedBytes)
		return d
	}
	raw, err := fs.ReadFile(tree, api.RenderedFile(name))
	if err != nil {
		d.err = fmt.Errorf("read %s: %w", api.RenderedFile(name), err)
		return d
	}
	r, err := api.ParseRendered(raw)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", api.RenderedFile(name), err)
		return d
	}
	if r.Name != name {
		d.err = fmt.Errorf("%s: metadata.name is %q, want %q", api.RenderedFile(name), r.Name, name)
		return d
	}
	if errs := api.ValidateRendered(r, opts).Errors(); len(errs) > 0 {
		d.err = fmt.Errorf("%s fails validation: %w", api.RenderedFile(name), errs.Err())
		return d
	}
	d.rendered, d.raw = r, raw
	return d
}

func (a *agent) policy() *api.NodeDisruptionPolicy {
	if a.want == nil || a.want.pool == nil {
		return nil
	}
	return a.want.pool.Disruption
}

// report sets the wanted report from the persisted state.
func (a *agent) report(state api.NodeState, reason string) {
	st := a.st
	desiredName := st.Pending
	if a.want != nil && !a.want.none && a.want.name() != "" {
		desiredName = a.want.name()
	} else if desiredName == "" {
		desiredName = st.Current
	}
	boot, _ := nodeops.BootID(a.o.Root, a.o.StateDir)
	a.reporter.Update(func(r *api.Report) {
		r.State = state
		r.Reason = reason
		r.CurrentConfig = st.Current
		r.DesiredConfig = desiredName
		r.Plan = st.Plan
		r.Labels = a.o.Labels
		r.BootID = boot
		r.AgentVersion = a.o.Version
		r.Hook = st.Hook
		applyDrift(r)
	})
}

// applyDrift makes a report with drift findings Degraded: a node that
// finished its update but drifted is not Done.
func applyDrift(r *api.Report) {
	byDrift := r.State == api.StateDegraded && strings.HasPrefix(r.Reason, driftReasonPrefix)
	if len(r.Drift) > 0 && (r.State == api.StateDone || byDrift) {
		r.State = api.StateDegraded
		r.Reason = driftReason(r.Drift)
	}
}

// SetDrift records the drift monitor's findings in the report (nil clears
// them) and pushes at once.
func (r *Reporter) SetDrift(findings []api.DriftFinding) {
	r.Update(func(rep *api.Report) {
		hadDrift := len(rep.Drift) > 0
		rep.Drift = findings
		if hadDrift && len(findings) == 0 && rep.State == api.StateDegraded &&
			strings.HasPrefix(rep.Reason, driftReasonPrefix) {
			rep.State, rep.Reason = api.StateDone, ""
		}
		applyDrift(rep)
	})
	r.Kick()
}
