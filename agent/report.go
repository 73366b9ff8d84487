package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
	"stoker.dev/stoker/nodeops"
)

// Reporter publishes the node's report.yaml on its own branch. Callers
// (the update loop, and the drift monitor) change the wanted report with
// Update and never wait for Git: a goroutine (Run) commits the latest
// wanted report when it differs from the last one pushed, or when the
// heartbeat is due, retrying with backoff; a compare-and-swap conflict
// re-reads the branch head. A Working report is pushed once it has been
// wanted for the settle time (ReporterOptions.Settle): an update that
// ends within it pushes only its outcome (Done or Degraded), one push
// instead of two; Flush (before a reboot, at shutdown) pushes at once.
type Reporter struct {
	repo      gitsource.Repo
	node      string
	branch    string
	heartbeat time.Duration
	settle    time.Duration
	backoff   wait.Backoff
	annotator nodeops.NodeAnnotator
	now       func() time.Time
	log       logrus.FieldLogger

	// pushMu serialises pushes (Run's and Flush's); mu guards the fields
	// below and is never held across Git, so Update does not wait for a
	// push in flight. pushed, head and loaded change only under both.
	pushMu sync.Mutex
	mu     sync.Mutex
	want   api.Report
	// wantAt is when want's state last changed (monotonic clock).
	wantAt time.Time
	pushed *api.Report // last report known to be on the branch
	head   string      // branch head pushed is at; "" unknown or absent
	loaded bool        // pushed/head were read from the branch
	kick   chan struct{}
}

// ReporterOptions configure a Reporter.
type ReporterOptions struct {
	Repo gitsource.Repo
	Node string
	// Heartbeat rewrites an unchanged report this often; 0 means 10m.
	Heartbeat time.Duration
	// Settle is how long a Working report waits before Run pushes it, so
	// a quick update pushes its outcome only; 0 means DefaultReportSettle,
	// a negative value pushes at once.
	Settle time.Duration
	// Backoff paces retries after a failed push (with jitter, so a fleet
	// does not push in lockstep after an outage); a zero Duration means
	// 1s doubling up to a minute.
	Backoff wait.Backoff
	// Annotator, when set, mirrors state changes onto the Kubernetes Node.
	Annotator nodeops.NodeAnnotator
	Now       func() time.Time
	Log       logrus.FieldLogger
}

// NewReporter returns a Reporter; call Run to start pushing.
func NewReporter(o ReporterOptions) *Reporter {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 10 * time.Minute
	}
	if o.Backoff.Duration <= 0 {
		o.Backoff = DefaultBackoff(time.Second)
		o.Backoff.Cap = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Settle == 0 {
		o.Settle = DefaultReportSettle
	}
	return &Reporter{repo: o.Repo, node: o.Node, branch: api.ReportsBranch(o.Node),
		heartbeat: o.Heartbeat, settle: o.Settle, backoff: o.Backoff, annotator: o.Annotator, now: o.Now,
		log: o.Log, want: api.Report{Node: o.Node}, kick: make(chan struct{}, 1)}
}

// Update changes the wanted report with fn and wakes the pusher when the
// report changed. Since is maintained here: it moves when State changes.
// Update never blocks on Git.
func (r *Reporter) Update(fn func(*api.Report)) {
	r.mu.Lock()
	before := r.want.State
	fn(&r.want)
	r.want.Node = r.node
	if r.want.State != before || r.want.Since.IsZero() {
		r.want.Since = r.now().UTC().Truncate(time.Second)
	}
	if r.want.State != before {
		r.wantAt = time.Now()
	}
	changed := r.pushed == nil || !sameReport(r.want, *r.pushed)
	r.mu.Unlock()
	if changed {
		r.Kick()
	}
}

// Kick asks for an immediate push attempt (e.g. from a drift monitor that
// found something).
func (r *Reporter) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Wanted returns a copy of the report the reporter wants on the branch.
func (r *Reporter) Wanted() api.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.want
}

// sameReport compares reports ignoring Heartbeat.
func sameReport(a, b api.Report) bool {
	a.Heartbeat, b.Heartbeat = time.Time{}, time.Time{}
	ja, errA := yaml.Marshal(a)
	jb, errB := yaml.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// DefaultReportSettle is ReporterOptions.Settle's default. An update that
// needs no reboot (files, a unit restart) takes well under it, so during
// a rollout each node pushes one report, not Working and then Done: at
// 1,000 report branches a push costs the Git server about 50 ms and the
// agent as much (docs/scale.md).
const DefaultReportSettle = 2 * time.Second

// settling is how much longer the wanted report waits before Run pushes
// it: a Working report not yet wanted for the settle time.
func (r *Reporter) settling() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.settle <= 0 || r.want.State != api.StateWorking || (r.pushed != nil && r.pushed.State == api.StateWorking) {
		return 0
	}
	return r.settle - time.Since(r.wantAt)
}

// Run pushes until ctx ends, backing off (with jitter) after failures.
func (r *Reporter) Run(ctx context.Context) {
	backoff := r.backoff
	for {
		if d := r.settling(); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-r.kick:
			case <-time.After(d):
			}
			continue
		}
		var wait <-chan time.Time
		due, err := r.pushOnce(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			delay := backoff.Step()
			r.log.WithError(err).WithField("retry", delay).Warn("push report failed; retrying")
			wait = time.After(delay)
		default:
			backoff = r.backoff
			wait = time.After(due)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-wait:
		}
	}
}

// Flush pushes the wanted report now if it is not on the branch yet,
// retrying transient failures (and compare-and-swap conflicts, after
// re-reading the branch) until it is or ctx ends. A permanent failure
// (refused credentials, a rejected ref) returns at once.
func (r *Reporter) Flush(ctx context.Context) error {
	backoff := r.backoff
	for {
		_, err := r.pushOnce(ctx)
		if err == nil {
			return nil
		}
		if !gitsource.IsRetryable(err) && !errors.Is(err, gitsource.ErrConflict) {
			return fmt.Errorf("flush report: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush report: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff.Step()):
		}
	}
}

// pushOnce commits the wanted report if needed and returns how long until
// the next heartbeat is due.
func (r *Reporter) pushOnce(ctx context.Context) (time.Duration, error) {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	r.mu.Lock()
	if r.want.State == "" {
		// Nothing to say yet: the agent has not decided its state. The
		// branch is read when there is (no Git traffic at start).
		r.mu.Unlock()
		return r.heartbeat, nil
	}
	if !r.loaded {
		r.mu.Unlock()
		if err := r.load(ctx); err != nil {
			return 0, err
		}
		r.mu.Lock()
	}
	locked := true
	defer func() {
		if locked {
			r.mu.Unlock()
		}
	}()
	now := r.now().UTC().Truncate(time.Second)
	if r.pushed != nil && r.want.State == r.pushed.State && !r.pushed.Since.IsZero() {
		// The state did not change since the last report on the branch
		// (e.g. across an agent restart): keep its Since.
		r.want.Since = r.pushed.Since
	}
	if r.pushed != nil && sameReport(r.want, *r.pushed) {
		if next := r.pushed.Heartbeat.Add(r.heartbeat); now.Before(next) {
			return next.Sub(now), nil
		}
	}
	rep := r.want
	rep.Heartbeat = now
	data, err := yaml.Marshal(rep)
	if err != nil {
		return 0, fmt.Errorf("encode report: %w", err)
	}
	pushed, head := r.pushed, r.head
	r.mu.Unlock() // Git from here on: Update must not wait for it
	locked = false
	if r.annotator != nil && (pushed == nil || pushed.State != rep.State ||
		pushed.CurrentConfig != rep.CurrentConfig || pushed.DesiredConfig != rep.DesiredConfig ||
		pushed.Reason != rep.Reason) {
		if err := r.annotator.Annotate(ctx, r.node, map[string]string{
			api.NodeStateAnnotation:         string(rep.State),
			api.NodeCurrentConfigAnnotation: rep.CurrentConfig,
			api.NodeDesiredConfigAnnotation: rep.DesiredConfig,
			api.NodeReasonAnnotation:        rep.Reason,
		}); err != nil {
			return 0, fmt.Errorf("annotate node %s: %w", r.node, err)
		}
	}
	msg := fmt.Sprintf("report %s: %s", r.node, rep.State)
	if rep.CurrentConfig != "" {
		msg += " at " + rep.CurrentConfig
	}
	if rep.DesiredConfig != "" && rep.DesiredConfig != rep.CurrentConfig {
		msg += " → " + rep.DesiredConfig
	}
	if rep.Reason != "" {
		msg += "\n\n" + rep.Reason
	}
	c, err := r.repo.Commit(ctx, gitsource.CommitRequest{
		Branch:  r.branch,
		Parent:  head,
		Changes: map[string][]byte{api.ReportFile: data, api.AgentFile: agentInfo(rep.AgentVersion)},
		Message: msg,
		Author:  gitsource.Signature{Name: "stoker-agent " + r.node, Email: "stoker-agent@" + r.node},
	})
	r.mu.Lock()
	locked = true
	switch {
	case errors.Is(err, gitsource.ErrNothingToCommit):
	case errors.Is(err, gitsource.ErrConflict):
		r.loaded = false // re-read the head (and what is there) next time
		return 0, fmt.Errorf("push report to %s: %w", r.branch, err)
	case err != nil:
		return 0, fmt.Errorf("push report to %s: %w", r.branch, err)
	default:
		r.head = c
	}
	r.pushed = &rep
	r.log.WithFields(logrus.Fields{"node": r.node, "commit": short(r.head), "state": rep.State}).Debug("pushed report")
	return r.heartbeat, nil
}

// load reads the report already on the branch, so a restarted agent
// does not commit an unchanged report again. Callers hold pushMu, not mu.
func (r *Reporter) load(ctx context.Context) error {
	head, err := r.repo.Head(ctx, r.branch)
	if errors.Is(err, gitsource.ErrRefNotFound) {
		r.mu.Lock()
		r.head, r.pushed, r.loaded = "", nil, true
		r.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("check report branch %s: %w", r.branch, err)
	}
	if _, err := r.repo.Fetch(ctx, r.branch); err != nil {
		return fmt.Errorf("fetch report branch %s: %w", r.branch, err)
	}
	tree, err := r.repo.Tree(ctx, head)
	if err != nil {
		return fmt.Errorf("read report branch %s: %w", r.branch, err)
	}
	var pushed *api.Report
	if data, err := fs.ReadFile(tree, api.ReportFile); err == nil {
		var rep api.Report
		if yaml.Unmarshal(data, &rep) == nil {
			pushed = &rep
		}
	}
	r.mu.Lock()
	r.head, r.pushed, r.loaded = head, pushed, true
	r.mu.Unlock()
	return nil
}

// agentInfo is agent.yaml on the report branch: the stoker/status layouts
// this build reads, so the hub knows when every agent reads layout 2,
// tied to the report's agent version (api.AgentInfo).
func agentInfo(version string) []byte {
	data, err := yaml.Marshal(api.AgentInfo{AgentVersion: version, StatusLayouts: api.StatusLayouts})
	if err != nil {
		panic(err) // a string and ints always encode
	}
	return data
}

func short(c string) string {
	if len(c) > 10 {
		return c[:10]
	}
	return c
}
