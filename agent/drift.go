package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fsnotify/fsnotify"
	"github.com/pmezard/go-difflib/difflib"
	"github.com/sirupsen/logrus"
	"github.com/vincent-petithory/dataurl"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// ResyncFile, created in the agent's state dir, makes the running agent
// re-apply its whole current config once (like MCO's
// /run/machine-config-daemon-force); the agent removes it when done.
const ResyncFile = "resync"

// Defaults of the drift monitor.
const (
	DefaultDriftInterval = 5 * time.Minute
	driftDebounce        = 150 * time.Millisecond
	// Content diffs are only shown for text files up to this size, and
	// cut to driftDiffLines lines.
	driftDiffMaxBytes = 32 << 10
	driftDiffLines    = 40
	// maxEvents is how many events a report keeps; the branch history
	// has them all.
	maxEvents = 10
)

// Event kinds the drift monitor records in the report.
const (
	EventDriftRestored = "drift-restored"
	EventResync        = "resync"
)

// RequestResync asks the agent running on stateDir to re-apply its full
// current config by creating the force file.
func RequestResync(stateDir string) error {
	p := filepath.Join(stateDir, ResyncFile)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return fmt.Errorf("request resync in %s: %w", stateDir, err)
	}
	return nil
}

// driftMonitor watches the current config's files for changes the agent
// did not make. It watches the parent directory of every managed file,
// unit and dropin (and the systemd *.wants directories, for enablement)
// with inotify, checks debounced after a change, and checks everything
// at start and every interval for what inotify cannot see (kernel
// arguments, enablement made through other paths). It checks only when
// the agent is idle at a config, holding the agent's lock, so an update's
// own writes are never reported: they happen while it waits.
type driftMonitor struct {
	a        *agent
	interval time.Duration
	log      logrus.FieldLogger
	trigger  chan struct{}

	w        *fsnotify.Watcher
	watched  map[string]bool // directories under watch
	targets  map[string]bool // managed paths under root, and their ancestors
	wantDirs map[string]bool // systemd *.wants / *.requires directories
	last     []api.DriftFinding
	cfg      *api.Rendered // cache of the current config
}

func newDriftMonitor(a *agent) *driftMonitor {
	iv := a.o.DriftInterval
	if iv <= 0 {
		iv = DefaultDriftInterval
	}
	return &driftMonitor{a: a, interval: iv, log: a.log.WithField("component", "drift"),
		trigger: make(chan struct{}, 1), watched: map[string]bool{}}
}

// Trigger asks for a check soon (after the agent's lock is free).
func (m *driftMonitor) Trigger() {
	select {
	case m.trigger <- struct{}{}:
	default:
	}
}

// run watches and checks until ctx ends.
func (m *driftMonitor) run(ctx context.Context) {
	var w *fsnotify.Watcher
	var err error
	if !m.a.o.NoInotify {
		w, err = fsnotify.NewWatcher()
	}
	if err != nil {
		m.log.WithError(err).Warn("inotify unavailable; drift is only checked every interval")
	} else if w != nil {
		m.w = w
		defer w.Close()
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if m.w != nil {
		events, errs = m.w.Events, m.w.Errors
	}
	m.check(ctx)
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if m.interesting(ev.Name) {
				debounce.Reset(driftDebounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events: check everything.
			m.log.WithError(err).Warn("inotify error; checking for drift")
			debounce.Reset(driftDebounce)
		case <-m.trigger:
			m.check(ctx)
		case <-debounce.C:
			m.check(ctx)
		case <-tick.C:
			m.check(ctx)
		}
	}
}

// interesting reports whether an inotify event's path can change drift:
// a managed path or one of its ancestors, anything in a wants directory,
// or the resync force file.
func (m *driftMonitor) interesting(name string) bool {
	name = filepath.Clean(name)
	return m.targets[name] || m.wantDirs[filepath.Dir(name)] ||
		name == filepath.Join(m.a.o.StateDir, ResyncFile)
}

// check compares the node with its current config under the agent's lock
// and publishes the findings; with the restore policy (or a resync
// request) it rewrites the config first.
func (m *driftMonitor) check(ctx context.Context) {
	a := m.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if !a.recovered || a.st.Stage != StageIdle || a.st.Current == "" {
		// Mid-update (or nothing applied yet): the update owns the files.
		m.publish(nil)
		m.arm(nil)
		return
	}
	cur, err := m.config(a.st.Current)
	if err != nil {
		m.log.WithError(err).Warn("drift check: load current config")
		return
	}
	findings, err := m.findings(ctx, cur)
	if err != nil {
		m.log.WithError(err).Warn("drift check failed")
		m.arm(cur)
		return
	}
	resync := false
	if _, err := os.Lstat(filepath.Join(a.o.StateDir, ResyncFile)); err == nil {
		resync = true
	}
	restore := len(findings) > 0 && a.want != nil && a.want.pool != nil && a.want.pool.Drift == api.DriftRestore
	if restore && !resync {
		// Record what drifted before putting it back: the branch history
		// is the drift timeline.
		m.publish(findings)
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := a.reporter.Flush(fctx); err != nil {
			m.log.WithError(err).Warn("report drift before restoring")
		}
		cancel()
	}
	if restore || resync {
		kind, what := EventDriftRestored, "restored "+describeFindings(findings, 5)
		if resync {
			kind, what = EventResync, "re-applied "+cur.Name
			if len(findings) > 0 {
				what += ": " + describeFindings(findings, 5)
			}
		}
		if err := m.restore(ctx, cur, findings); err != nil {
			m.log.WithError(err).WithField("rendered", cur.Name).Warn(kind + " failed")
		} else {
			m.log.WithFields(logrus.Fields{"rendered": cur.Name, "action": kind}).Info(what)
			if resync {
				if err := os.Remove(filepath.Join(a.o.StateDir, ResyncFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					m.log.WithError(err).Warn("remove resync file")
				}
			}
			a.reporter.addEvent(api.Event{Time: a.o.Now().UTC().Truncate(time.Second), Kind: kind, Message: what})
			if findings, err = m.findings(ctx, cur); err != nil {
				m.log.WithError(err).Warn("drift check after restore failed")
			}
		}
	}
	if len(findings) > 0 && !sameFindings(findings, m.last) {
		m.log.WithField("rendered", cur.Name).Warn(driftReason(findings))
	} else if len(findings) == 0 && len(m.last) > 0 {
		m.log.WithField("rendered", cur.Name).Info("drift cleared")
	}
	m.publish(findings)
	m.arm(cur)
}

// publish hands changed findings to the reporter (which pushes at once).
func (m *driftMonitor) publish(findings []api.DriftFinding) {
	if sameFindings(findings, m.last) {
		return
	}
	m.last = findings
	m.a.reporter.SetDrift(findings)
}

func sameFindings(a, b []api.DriftFinding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (m *driftMonitor) config(name string) (*api.Rendered, error) {
	if m.cfg != nil && m.cfg.Name == name {
		return m.cfg, nil
	}
	r, err := loadConfig(m.a.o.StateDir, name)
	if err != nil {
		return nil, err
	}
	m.cfg = r
	return r, nil
}

// findings validates the node against cur and adds content diffs.
func (m *driftMonitor) findings(ctx context.Context, cur *api.Rendered) ([]api.DriftFinding, error) {
	findings, err := m.a.applier.Validate(ctx, cur)
	if err != nil {
		return nil, err
	}
	diffed := map[string]bool{}
	for _, f := range findings {
		if f.Kind == nodeops.DriftContent && !looksSecret(f.Path, nil) {
			diffed[f.Path] = true
		}
	}
	var expected map[string][]byte
	for i, f := range findings {
		if !diffed[f.Path] || f.Kind != nodeops.DriftContent {
			continue
		}
		if expected == nil {
			expected = expectedContents(cur, diffed)
		}
		want, ok := expected[f.Path]
		if !ok {
			continue
		}
		target, err := nodeops.Resolve(m.a.o.Root, f.Path)
		if err != nil {
			continue
		}
		got, err := readForDiff(target)
		if err != nil {
			continue
		}
		findings[i].Diff = shortDiff(f.Path, want, got)
	}
	return findings, nil
}

// maxDiffBytes bounds what a content diff reads of either side: a file
// larger than this is reported by digest only.
const maxDiffBytes = 1 << 20

var errTooLargeForDiff = errors.New("too large to diff")

// readForDiff reads at most maxDiffBytes of target, whatever a local
// user put there.
func readForDiff(target string) ([]byte, error) {
	f, err := os.Open(target)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDiffBytes+1))
	if err == nil && len(data) > maxDiffBytes {
		err = errTooLargeForDiff
	}
	return data, err
}

// restore puts cur back: a symlink or non-file where a managed file goes
// is removed (the applier refuses to write through them), then cur is
// applied over itself, which rewrites what differs and re-enables units.
func (m *driftMonitor) restore(ctx context.Context, cur *api.Rendered, findings []api.DriftFinding) error {
	a := m.a
	for _, f := range findings {
		if f.Path == "" || (f.Kind != nodeops.DriftSymlink && f.Kind != nodeops.DriftNotRegular) {
			continue
		}
		target, err := nodeops.Resolve(a.o.Root, f.Path)
		if err != nil {
			return fmt.Errorf("restore %s: %w", f.Path, err)
		}
		if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore %s: remove %s: %w", f.Path, f.Found, err)
		}
	}
	if err := a.applier.Apply(ctx, cur, cur); err != nil {
		var se *nodeops.StepError
		if errors.As(err, &se) && se.RollbackErr != nil {
			if rerr := a.applier.Rollback(ctx); rerr != nil {
				return fmt.Errorf("restore %s: %w (roll back: %v)", cur.Name, err, rerr)
			}
		}
		return fmt.Errorf("restore %s: %w", cur.Name, err)
	}
	if err := a.applier.Commit(); err != nil {
		return fmt.Errorf("restore %s: %w", cur.Name, err)
	}
	return nil
}

// arm points the watcher at the directories cur's files live in (the
// nearest existing ancestor for a missing one), the systemd wants
// directories and the state dir.
func (m *driftMonitor) arm(cur *api.Rendered) {
	if m.w == nil {
		return
	}
	root := m.a.o.Root
	targets := map[string]bool{}
	want := map[string]bool{filepath.Clean(m.a.o.StateDir): true}
	wantDirs := map[string]bool{}
	if cur != nil {
		paths, err := m.a.applier.ManagedPaths(cur)
		if err != nil {
			m.log.WithError(err).Warn("drift monitor: list managed paths")
		}
		for _, p := range paths {
			t, err := nodeops.Resolve(root, p)
			if err != nil {
				continue
			}
			targets[t] = true
			dir := filepath.Dir(t)
			for {
				targets[dir] = true
				if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
					want[dir] = true
					break
				}
				if next := filepath.Dir(dir); next != dir && strings.HasPrefix(next, filepath.Clean(root)) {
					dir = next
					continue
				}
				break
			}
		}
		if len(cur.Config.Systemd.Units) > 0 {
			unitDir, err := nodeops.Resolve(root, nodeops.SystemdUnitDir+"/x")
			if err == nil {
				unitDir = filepath.Dir(unitDir)
				want[unitDir] = true
				for _, pat := range []string{"*.wants", "*.requires"} {
					dirs, _ := filepath.Glob(filepath.Join(unitDir, pat))
					for _, d := range dirs {
						want[d] = true
						wantDirs[d] = true
					}
				}
			}
		}
	}
	for d := range m.watched {
		if !want[d] {
			_ = m.w.Remove(d)
			delete(m.watched, d)
		}
	}
	for d := range want {
		if m.watched[d] {
			continue
		}
		if err := m.w.Add(d); err != nil {
			m.log.WithError(err).WithField("path", d).Debug("drift monitor: watch")
			continue
		}
		m.watched[d] = true
	}
	m.targets, m.wantDirs = targets, wantDirs
}

// expectedContents maps the managed file, unit and dropin paths of r in
// only to the content r gives them (ssh keys are left out: never
// diffed); only those are decoded, each at most maxDiffBytes.
func expectedContents(r *api.Rendered, only map[string]bool) map[string][]byte {
	out := map[string][]byte{}
	for _, f := range r.Config.Storage.Files {
		if !only[path.Clean(f.Path)] {
			continue
		}
		if data, err := decodeSource(f.Contents.Source, f.Contents.Compression); err == nil {
			out[path.Clean(f.Path)] = data
		}
	}
	for _, u := range r.Config.Systemd.Units {
		if u.Contents != nil {
			out[path.Join(nodeops.SystemdUnitDir, u.Name)] = []byte(*u.Contents)
		}
		for _, d := range u.Dropins {
			if d.Contents != nil {
				out[path.Join(nodeops.SystemdUnitDir, u.Name+".d", d.Name)] = []byte(*d.Contents)
			}
		}
	}
	return out
}

func decodeSource(src, compression *string) ([]byte, error) {
	if src == nil || *src == "" {
		return nil, nil
	}
	u, err := dataurl.DecodeString(*src)
	if err != nil {
		return nil, fmt.Errorf("decode data url: %w", err)
	}
	data := u.Data
	if compression != nil && *compression == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		if data, err = io.ReadAll(io.LimitReader(zr, maxDiffBytes+1)); err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
	}
	if len(data) > maxDiffBytes {
		return nil, errTooLargeForDiff
	}
	return data, nil
}

// secretWords in a path or content keep a file's diff out of the report
// (which is in Git for everyone with read access to see).
var secretWords = []string{"secret", "password", "passwd", "shadow", "token", "credential",
	"private", "key", ".pem", ".ssh", "pull-secret", "auth"}

func looksSecret(p string, data []byte) bool {
	lp := strings.ToLower(p)
	for _, w := range secretWords {
		if strings.Contains(lp, w) {
			return true
		}
	}
	if data != nil {
		ld := bytes.ToLower(data)
		for _, w := range []string{"private key", "password", "secret", "token", "bearer "} {
			if bytes.Contains(ld, []byte(w)) {
				return true
			}
		}
	}
	return false
}

func isText(b []byte) bool {
	return len(b) <= driftDiffMaxBytes && utf8.Valid(b) && !bytes.ContainsRune(b, 0)
}

// shortDiff is a unified diff (expected → found) cut to driftDiffLines
// lines, or "" for binary, large or secret-looking files.
func shortDiff(p string, want, got []byte) string {
	if !isText(want) || !isText(got) || looksSecret(p, want) || looksSecret(p, got) {
		return ""
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(want)), B: difflib.SplitLines(string(got)),
		FromFile: p + " (expected)", ToFile: p + " (found)", Context: 2,
	})
	if err != nil {
		return ""
	}
	lines := strings.SplitAfter(d, "\n")
	if len(lines) > driftDiffLines {
		d = strings.Join(lines[:driftDiffLines], "") + fmt.Sprintf("... (%d more lines)\n", len(lines)-driftDiffLines)
	}
	return d
}

// describeFinding says in a few words what one finding is.
func describeFinding(f api.DriftFinding) string {
	switch f.Kind {
	case nodeops.DriftContent:
		return f.Path + " content changed"
	case nodeops.DriftMode:
		return fmt.Sprintf("%s mode changed to %s (want %s)", f.Path, f.Found, f.Expected)
	case nodeops.DriftOwner:
		return fmt.Sprintf("%s owner changed to %s (want %s)", f.Path, f.Found, f.Expected)
	case nodeops.DriftMissing:
		return f.Path + " missing"
	case nodeops.DriftSymlink:
		return f.Path + " replaced by a " + f.Found
	case nodeops.DriftNotRegular:
		return fmt.Sprintf("%s is a %s, not a regular file", f.Path, f.Found)
	case nodeops.DriftUnit:
		return fmt.Sprintf("unit %s is %s (want %s)", f.Unit, f.Found, f.Expected)
	case nodeops.DriftKernelArgs:
		return fmt.Sprintf("kernel arguments %s (want %s)", f.Found, f.Expected)
	}
	what := f.Path
	if what == "" {
		what = f.Unit
	}
	return fmt.Sprintf("%s %s: found %s, want %s", f.Kind, what, f.Found, f.Expected)
}

func describeFindings(list []api.DriftFinding, max int) string {
	parts := make([]string, 0, len(list))
	for i, f := range list {
		if i == max {
			parts = append(parts, fmt.Sprintf("%d more", len(list)-max))
			break
		}
		parts = append(parts, describeFinding(f))
	}
	return strings.Join(parts, "; ")
}

// driftReasonPrefix starts the reason of a report Degraded by drift only.
const driftReasonPrefix = "drift: "

// driftReason is the report reason for findings, e.g.
// "drift: /etc/chrony.conf content changed".
func driftReason(list []api.DriftFinding) string {
	return driftReasonPrefix + describeFindings(list, 3)
}

// addEvent appends e to the wanted report, keeping the newest maxEvents.
func (r *Reporter) addEvent(e api.Event) {
	r.Update(func(rep *api.Report) {
		rep.Events = append(rep.Events, e)
		if n := len(rep.Events); n > maxEvents {
			rep.Events = append([]api.Event(nil), rep.Events[n-maxEvents:]...)
		}
	})
}
