package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/test/gitserver"
)

// publishPolicy is publish with the pool's drift policy set.
func (e *env) publishPolicy(r *api.Rendered, policy *api.NodeDisruptionPolicy, drift api.DriftPolicy) {
	e.t.Helper()
	publishPolicy(e.t, e.srv, r, policy, drift)
}

func publishPolicy(t testing.TB, srv *gitserver.Server, r *api.Rendered, policy *api.NodeDisruptionPolicy, drift api.DriftPolicy) {
	t.Helper()
	nt, err := yaml.Marshal(api.NodeTarget{Name: node, Pool: "worker", DesiredConfig: r.Name})
	must(t, err)
	pt, err := yaml.Marshal(api.PoolTarget{Name: "worker", Rendered: r.Name, Disruption: policy, Drift: drift})
	must(t, err)
	data, err := r.Encode()
	must(t, err)
	srv.SeedRepo(t, "cfg", map[string]string{api.NodeFile(node): string(nt),
		api.PoolFile("worker"): string(pt), api.RenderedFile(r.Name): string(data)}, api.StatusBranch)
}

// start runs the agent in the background (not Once) until the test ends.
func (e *env) start(o Options) {
	e.t.Helper()
	o.Once = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("agent: %v", err)
		}
	})
}

// tryReport reads the report on the branch; an absent branch is an error.
func (e *env) tryReport() (api.Report, error) { return tryReport(e.srv) }

func tryReport(srv *gitserver.Server) (api.Report, error) {
	out, err := gitserver.Git(srv.Path("cfg"), nil, "show", api.ReportsBranch(node)+":"+api.ReportFile)
	if err != nil {
		return api.Report{}, err
	}
	var r api.Report
	err = yaml.UnmarshalStrict([]byte(out), &r)
	return r, err
}

// waitTimeout bounds every wait on the agent in these tests. It is long
// on purpose: a loaded CI machine must slow a test down, never fail it.
const waitTimeout = 2 * time.Minute

// waitReport waits until the report on the branch satisfies ok. It wakes
// on the event, the report branch moving (a cheap read of its loose ref
// file; git show runs only when it moved, and every 500ms in case the ref
// was packed), within waitTimeout.
func (e *env) waitReport(what string, ok func(api.Report) bool) api.Report {
	e.t.Helper()
	r, found := waitReportOn(e.srv, ok)
	if !found {
		e.t.Fatalf("timed out after %v waiting for %s; last report: %+v", waitTimeout, what, r)
	}
	return r
}

func waitReportOn(srv *gitserver.Server, ok func(api.Report) bool) (api.Report, bool) {
	ref := filepath.Join(srv.Path("cfg"), "refs/heads", api.ReportsBranch(node))
	var last api.Report
	lastHead, lastShow := "", time.Time{}
	for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		head, err := os.ReadFile(ref)
		if err == nil && string(head) == lastHead && time.Since(lastShow) < 500*time.Millisecond {
			continue
		}
		lastHead, lastShow = string(head), time.Now()
		if r, err := tryReport(srv); err == nil {
			if ok(r) {
				return r, true
			}
			last = r
		}
	}
	return last, false
}

func doneAt(name string) func(api.Report) bool {
	return func(r api.Report) bool {
		return r.State == api.StateDone && r.CurrentConfig == name && len(r.Drift) == 0
	}
}

func hasFinding(kind, path, unit string) func(api.Report) bool {
	return func(r api.Report) bool {
		if r.State != api.StateDegraded || !strings.HasPrefix(r.Reason, "drift: ") {
			return false
		}
		for _, f := range r.Drift {
			if f.Kind == kind && f.Path == path && f.Unit == unit {
				return true
			}
		}
		return false
	}
}

// converged brings the node to c1 with the given drift policy and starts
// a long-running agent.
func convergedAgent(t *testing.T, drift api.DriftPolicy, opts ...func(*Options)) *env {
	e := newEnv(t)
	e.publishPolicy(c1, livePolicy, drift)
	must(t, e.converge(e.options()))
	if !e.at(c1) {
		t.Fatal("not at c1")
	}
	o := e.options()
	for _, f := range opts {
		f(&o)
	}
	e.start(o)
	e.waitReport("Done at c1", doneAt(c1.Name))
	return e
}

func TestDriftReportedAndCleared(t *testing.T) {
	const a = "/etc/stoker/a.conf"
	wantsLink := "etc/systemd/system/multi-user.target.wants/x.service"
	restoreA := func(e *env) {
		p := filepath.Join(e.root, a)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			must(e.t, os.Remove(p))
		}
		must(e.t, os.WriteFile(p, []byte("one"), 0o644))
		must(e.t, os.Chmod(p, 0o644))
	}
	tests := []struct {
		name   string
		change func(e *env)
		revert func(e *env)
		kind   string
		path   string
		unit   string
		check  func(t *testing.T, e *env, r api.Report)
	}{
		{"edit", func(e *env) {
			// Written aside and renamed in, as an editor saves: a write in
			// place can be seen truncated, empty, by a check between the
			// truncate and the write, and that first finding is the one
			// this case reads.
			tmp := filepath.Join(e.root, a+".tmp")
			must(e.t, os.WriteFile(tmp, []byte("changed\n"), 0o644))
			must(e.t, os.Rename(tmp, filepath.Join(e.root, a)))
		}, restoreA, nodeops.DriftContent, a, "", func(t *testing.T, e *env, r api.Report) {
			f := r.Drift[0]
			if f.Expected != nodeops.Digest([]byte("one")) || f.Found != nodeops.Digest([]byte("changed\n")) {
				t.Errorf("digests %s / %s", f.Expected, f.Found)
			}
			if !strings.Contains(f.Diff, "-one") || !strings.Contains(f.Diff, "+changed") {
				t.Errorf("diff %q lacks the change", f.Diff)
			}
			if r.Reason != "drift: "+a+" content changed" {
				t.Errorf("reason %q", r.Reason)
			}
			// MCO's rule: the file is left as found.
			if data, _ := os.ReadFile(filepath.Join(e.root, a)); string(data) != "changed\n" {
				t.Errorf("file rewritten to %q under the report policy", data)
			}
		}},
		{"delete", func(e *env) {
			must(e.t, os.Remove(filepath.Join(e.root, a)))
		}, restoreA, nodeops.DriftMissing, a, "", nil},
		{"chmod", func(e *env) {
			must(e.t, os.Chmod(filepath.Join(e.root, a), 0o600))
		}, restoreA, nodeops.DriftMode, a, "", func(t *testing.T, e *env, r api.Report) {
			if f := r.Drift[0]; f.Expected != "0644" || f.Found != "0600" {
				t.Errorf("mode finding %+v", f)
			}
		}},
		{"replace by symlink", func(e *env) {
			p := filepath.Join(e.root, a)
			must(e.t, os.Remove(p))
			must(e.t, os.Symlink("../stoker-original.conf", p))
		}, restoreA, nodeops.DriftSymlink, a, "", nil},
		{"disable unit by hand", func(e *env) {
			must(e.t, os.Remove(filepath.Join(e.root, wantsLink)))
		}, func(e *env) {
			must(e.t, os.Symlink("/etc/systemd/system/x.service", filepath.Join(e.root, wantsLink)))
		}, nodeops.DriftUnit, "", "x.service", func(t *testing.T, e *env, r api.Report) {
			if f := r.Drift[0]; f.Expected != "enabled" || f.Found != "disabled" {
				t.Errorf("unit finding %+v", f)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := convergedAgent(t, "")
			if _, err := os.Lstat(filepath.Join(e.root, wantsLink)); err != nil {
				t.Fatalf("x.service is not enabled through %s: %v", wantsLink, err)
			}
			tc.change(e)
			r := e.waitReport(tc.kind+" finding", hasFinding(tc.kind, tc.path, tc.unit))
			if len(r.Drift) != 1 {
				t.Errorf("findings %+v, want exactly one", r.Drift)
			}
			if tc.check != nil {
				tc.check(t, e, r)
			}
			tc.revert(e)
			e.waitReport("drift cleared", doneAt(c1.Name))
			// The branch history is the timeline: Done, Degraded, Done.
			reps, err := gitLog(e)
			must(t, err)
			n := len(reps)
			if n < 3 || !strings.Contains(reps[n-2], "state: Degraded") || !strings.Contains(reps[n-1], "state: Done") {
				t.Fatalf("report history does not end Degraded → Done:\n%s", strings.Join(reps, "\n---\n"))
			}
		})
	}
}

func TestDriftRestorePolicy(t *testing.T) {
	tests := []struct {
		name   string
		change func(p string) error
	}{
		{"edit", func(p string) error { return os.WriteFile(p, []byte("changed"), 0o644) }},
		{"replace by symlink", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("../stoker-original.conf", p)
		}},
		{"delete", os.Remove},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := convergedAgent(t, api.DriftRestore)
			p := filepath.Join(e.root, "etc/stoker/b.conf")
			must(t, tc.change(p))
			r := e.waitReport("restored", func(r api.Report) bool {
				return doneAt(c1.Name)(r) && len(r.Events) > 0
			})
			if ev := r.Events[len(r.Events)-1]; ev.Kind != EventDriftRestored || !strings.Contains(ev.Message, "/etc/stoker/b.conf") {
				t.Errorf("event %+v, want %s naming the file", ev, EventDriftRestored)
			}
			if !e.at(c1) {
				t.Fatal("node not back at c1 after restore")
			}
			if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("b.conf not a regular file after restore: %v", err)
			}
			if j, _ := nodeops.ReadJournal(e.stateDir); j != nil {
				t.Fatalf("restore left a journal: %+v", j)
			}
			// The drift itself was recorded before it was restored.
			reps, err := gitLog(e)
			must(t, err)
			if !strings.Contains(strings.Join(reps, "\n"), "/etc/stoker/b.conf") ||
				!strings.Contains(strings.Join(reps, "\n"), "state: Degraded") {
				t.Fatalf("no Degraded report naming the drift in the history:\n%s", strings.Join(reps, "\n---\n"))
			}
		})
	}
}

func TestResyncFile(t *testing.T) {
	e := convergedAgent(t, api.DriftReport)
	p := filepath.Join(e.root, "etc/stoker/a.conf")
	must(t, os.WriteFile(p, []byte("changed"), 0o644))
	e.waitReport("content finding", hasFinding(nodeops.DriftContent, "/etc/stoker/a.conf", ""))
	must(t, RequestResync(e.stateDir))
	r := e.waitReport("resync", func(r api.Report) bool { return doneAt(c1.Name)(r) && len(r.Events) > 0 })
	if ev := r.Events[len(r.Events)-1]; ev.Kind != EventResync {
		t.Errorf("event %+v, want %s", ev, EventResync)
	}
	if data, _ := os.ReadFile(p); string(data) != "one" {
		t.Fatalf("a.conf is %q after resync, want one", data)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, ResyncFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("resync file left: %v", err)
	}
}

// slowSystemd makes every enable slow, so an update's writes sit in the
// watched directories for longer than the monitor's debounce.
type slowSystemd struct {
	nodeops.Systemd
	delay time.Duration
}

func (s *slowSystemd) Enable(ctx context.Context, u ...string) error {
	time.Sleep(s.delay)
	return s.Systemd.Enable(ctx, u...)
}

func TestNoDriftDuringApply(t *testing.T) {
	e := convergedAgent(t, api.DriftReport, func(o *Options) {
		o.Systemd = &slowSystemd{Systemd: o.Systemd, delay: 400 * time.Millisecond}
	})
	e.publishPolicy(c2, livePolicy, api.DriftReport)
	e.waitReport("Done at c2", doneAt(c2.Name))
	// Stay a while: a late check must not find anything either.
	time.Sleep(500 * time.Millisecond)
	e.waitReport("still Done at c2", doneAt(c2.Name))
	reps, err := gitLog(e)
	must(t, err)
	for _, rep := range reps {
		if strings.Contains(rep, "drift") {
			t.Fatalf("a report during the update has drift:\n%s", rep)
		}
	}
	if !e.at(c2) {
		t.Fatal("not at c2")
	}
}

// BenchmarkDriftToReport measures a write to a managed file until the
// report naming it (or clearing it) is on the report branch of a local
// git daemon.
func BenchmarkDriftToReport(b *testing.B) {
	srv := gitserver.New(b, gitserver.Daemon)
	root, stateDir := b.TempDir(), filepath.Join(b.TempDir(), "state")
	must(b, os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755))
	must(b, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:Core:/var/home/core:/bin/bash\n"), 0o644))
	must(b, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\ncore:x:1000:\n"), 0o644))
	publishPolicy(b, srv, c1, livePolicy, api.DriftReport)
	o := Options{RepoURL: srv.URL("cfg"), Node: node, Root: root, StateDir: stateDir, WorkDir: b.TempDir(),
		Interval: time.Second, ReportBackoff: 10 * time.Millisecond,
		Systemd: &nodeops.RootSystemd{Root: root}, OS: mustBackend(b), Drainer: &nodeops.ExecDrainer{Command: "true"},
		Rebooter: &nodeops.SimulateRebooter{StateDir: stateDir, Exec: func(string, []string, []string) error { return nil }}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	defer func() { cancel(); <-done }()
	p := filepath.Join(root, "etc/stoker/a.conf")
	wait := func(ok func(api.Report) bool) {
		if _, found := waitReportOn(srv, ok); !found {
			b.Fatal("timed out waiting for the report")
		}
	}
	wait(doneAt(c1.Name))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			must(b, os.WriteFile(p, []byte("drifted"), 0o644))
			wait(hasFinding(nodeops.DriftContent, "/etc/stoker/a.conf", ""))
		} else {
			must(b, os.WriteFile(p, []byte("one"), 0o644))
			wait(doneAt(c1.Name))
		}
	}
}

// TestDriftFoundWhenChangedWhileStopped: a file changed while the agent
// was not running (after Ignition on first boot, or between restarts)
// is reported once the agent is back, however its start is spread: the
// monitor's own first check runs before the update loop has recovered
// and skips the node, so recovery must have it check again (with a long
// drift interval and no inotify event, nothing else would).
func TestDriftFoundWhenChangedWhileStopped(t *testing.T) {
	const a = "/etc/stoker/a.conf"
	e := newEnv(t)
	e.publishPolicy(c1, livePolicy, api.DriftReport)
	must(t, e.converge(e.options()))
	if !e.at(c1) {
		t.Fatal("not at c1")
	}
	must(t, os.WriteFile(filepath.Join(e.root, a), []byte("changed while stopped\n"), 0o644))
	o := e.options()
	o.StartSpread = 3 * time.Second // the first poll comes after the monitor's first check
	o.DriftInterval = time.Hour
	e.start(o)
	e.waitReport("drift of "+a, hasFinding(nodeops.DriftContent, a, ""))
}
