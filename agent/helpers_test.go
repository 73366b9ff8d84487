package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/test/gitserver"
)

const node = "n1"

func strp(s string) *string { return &s }
func boolp(b bool) *bool    { return &b }
func intp(i int) *int       { return &i }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const unitText = "[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"

// cfg builds a rendered config: files under /etc/stoker (path → content),
// enabled units, and core's ssh keys.
func cfg(name string, files map[string]string, units []string, keys ...string) *api.Rendered {
	r := &api.Rendered{Name: name}
	r.Config.Ignition.Version = api.IgnitionVersion
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := ign3types.File{Node: ign3types.Node{Path: "/etc/stoker/" + p}}
		f.Contents.Source = strp("data:," + url.PathEscape(files[p]))
		f.Mode = intp(0o644)
		r.Config.Storage.Files = append(r.Config.Storage.Files, f)
	}
	for _, u := range units {
		r.Config.Systemd.Units = append(r.Config.Systemd.Units, ign3types.Unit{Name: u, Contents: strp(unitText), Enabled: boolp(true)})
	}
	if len(keys) > 0 {
		u := ign3types.PasswdUser{Name: "core"}
		for _, k := range keys {
			u.SSHAuthorizedKeys = append(u.SSHAuthorizedKeys, ign3types.SSHAuthorizedKey(k))
		}
		r.Config.Passwd.Users = []ign3types.PasswdUser{u}
	}
	return r
}

var (
	c1 = cfg("rendered-worker-1", map[string]string{"a.conf": "one", "b.conf": "bee"}, []string{"x.service"}, "ssh-ed25519 AAAAkey1 k1")
	c2 = cfg("rendered-worker-2", map[string]string{"a.conf": "two", "c.conf": "sea"}, []string{"y.service"}, "ssh-ed25519 AAAAkey2 k2")
)

// livePolicy makes c1 → c2 a Reload-only change.
var livePolicy = &api.NodeDisruptionPolicy{
	Files: []api.FilePolicy{{Path: "/etc/stoker", Actions: []api.Action{{Type: api.ActionReload, Reload: &api.ServiceTarget{ServiceName: "stoker-test.service"}}}}},
	Units: []api.UnitPolicy{{Name: "x.service", Actions: []api.Action{{Type: api.ActionNone}}}, {Name: "y.service", Actions: []api.Action{{Type: api.ActionNone}}}},
}

// env is one node under a temp root, talking to a real git daemon.
type env struct {
	t        *testing.T
	srv      *gitserver.Server
	root     string
	stateDir string
	workDir  string
	drainLog string
	sd       *crashSystemd
	reboots  int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"),
		[]byte("root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:Core:/var/home/core:/bin/bash\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\ncore:x:1000:\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/stoker-original.conf"), []byte("kept"), 0o644))
	e := &env{t: t, srv: gitserver.New(t, gitserver.Daemon), root: root,
		stateDir: filepath.Join(t.TempDir(), "state"), workDir: t.TempDir(),
		drainLog: filepath.Join(t.TempDir(), "drain")}
	e.sd = &crashSystemd{Systemd: &nodeops.RootSystemd{Root: root}}
	return e
}

// publish writes what the hub would: the node's target, its pool and the
// rendered configs, on stoker/status.
func (e *env) publish(r *api.Rendered, policy *api.NodeDisruptionPolicy, extra ...*api.Rendered) {
	e.t.Helper()
	e.srv.SeedRepo(e.t, "cfg", statusFiles(e.t, r, policy, extra...), api.StatusBranch)
}

// statusFiles are the stoker/status files that make r node's target in
// pool worker, with extra rendered configs beside it.
func statusFiles(t testing.TB, r *api.Rendered, policy *api.NodeDisruptionPolicy, extra ...*api.Rendered) map[string]string {
	t.Helper()
	files := map[string]string{}
	nt, err := yaml.Marshal(api.NodeTarget{Name: node, Pool: "worker", DesiredConfig: r.Name})
	must(t, err)
	files[api.NodeFile(node)] = string(nt)
	pt, err := yaml.Marshal(api.PoolTarget{Name: "worker", Rendered: r.Name, Disruption: policy})
	must(t, err)
	files[api.PoolFile("worker")] = string(pt)
	for _, x := range append([]*api.Rendered{r}, extra...) {
		data, err := x.Encode()
		must(t, err)
		files[api.RenderedFile(x.Name)] = string(data)
	}
	return files
}

func (e *env) options() Options {
	return Options{
		RepoURL: e.srv.URL("cfg"), Node: node, Root: e.root, StateDir: e.stateDir, WorkDir: e.workDir,
		Labels:   map[string]string{"node-role.kubernetes.io/worker": ""},
		Interval: 20 * time.Millisecond, ReportBackoff: 10 * time.Millisecond, RetryFailed: time.Hour,
		Systemd: e.sd, OS: mustBackend(e.t), Once: true, Version: "test",
		Drainer: &nodeops.ExecDrainer{Command: "echo $STOKER_DRAIN > " + e.drainLog},
		Rebooter: &nodeops.SimulateRebooter{StateDir: e.stateDir, Exec: func(string, []string, []string) error {
			e.reboots++ // the test restarts the agent itself, as re-exec would
			return nil
		}},
	}
}

func mustBackend(t testing.TB) nodeops.OSBackend {
	b, err := nodeops.NewOSBackend("none", "/")
	must(t, err)
	return b
}

type crashPanic string

// runOnce runs the agent once (Once mode); a crashPanic is a crash.
func (e *env) runOnce(o Options) (crashed string, err error) {
	defer func() {
		if r := recover(); r != nil {
			cp, ok := r.(crashPanic)
			if !ok {
				panic(r)
			}
			crashed = string(cp)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return "", Run(ctx, o)
}

// converge runs the agent, restarting it after every simulated reboot,
// until it returns without rebooting.
func (e *env) converge(o Options) error {
	for i := 0; i < 5; i++ {
		before := e.reboots
		crashed, err := e.runOnce(o)
		if crashed != "" {
			return fmt.Errorf("crashed at %s", crashed)
		}
		if e.reboots == before {
			return err
		}
	}
	return errors.New("still rebooting after 5 boots")
}

func (e *env) report() api.Report {
	e.t.Helper()
	out, err := gitserver.Git(e.srv.Path("cfg"), nil, "show", api.ReportsBranch(node)+":"+api.ReportFile)
	must(e.t, err)
	var r api.Report
	must(e.t, yaml.UnmarshalStrict([]byte(out), &r))
	return r
}

func (e *env) reportCommits() int {
	e.t.Helper()
	out, err := gitserver.Git(e.srv.Path("cfg"), nil, "rev-list", "--count", api.ReportsBranch(node))
	must(e.t, err)
	var n int
	fmt.Sscan(strings.TrimSpace(out), &n)
	return n
}

func (e *env) applier() *nodeops.Applier {
	a, err := nodeops.NewApplier(nodeops.ApplierOptions{Root: e.root, StateDir: e.stateDir, Systemd: e.sd.Systemd, OS: mustBackend(e.t)})
	must(e.t, err)
	return a
}

// at reports whether the node is exactly at r: Validate finds nothing and
// /etc/stoker holds exactly r's files (no leftovers of another config).
func (e *env) at(r *api.Rendered) bool {
	e.t.Helper()
	if r == nil {
		entries, _ := os.ReadDir(filepath.Join(e.root, "etc/stoker"))
		entries = slices.DeleteFunc(entries, func(d os.DirEntry) bool { return d.Name() == "hooks.d" })
		return len(entries) == 0
	}
	f, err := e.applier().Validate(context.Background(), r)
	must(e.t, err)
	if len(f) > 0 {
		return false
	}
	entries, _ := os.ReadDir(filepath.Join(e.root, "etc/stoker"))
	entries = slices.DeleteFunc(entries, func(d os.DirEntry) bool { return d.Name() == "hooks.d" }) // the host's, not managed
	if len(entries) != len(r.Config.Storage.Files) {
		return false
	}
	for _, u := range []string{"x.service", "y.service"} {
		_, err := os.Stat(filepath.Join(e.root, "etc/systemd/system", u))
		want := false
		for _, ru := range r.Config.Systemd.Units {
			want = want || ru.Name == u
		}
		if (err == nil) != want {
			return false
		}
	}
	return true
}

func (e *env) drainState() string {
	data, _ := os.ReadFile(e.drainLog)
	return strings.TrimSpace(string(data))
}

// crashSystemd wraps the real systemd (systemctl --root) so a test can
// crash or fail the Nth call, i.e. in the middle of an apply.
type crashSystemd struct {
	nodeops.Systemd
	mu      sync.Mutex
	calls   int
	crashAt int // panic at this call (1-based); 0 never
	failAt  int // fail this call with an error; 0 never
	failOp  string
}

func (s *crashSystemd) hook(op string) error {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if s.crashAt != 0 && n == s.crashAt {
		panic(crashPanic(fmt.Sprintf("systemd#%d(%s)", n, op)))
	}
	if s.failOp != "" && op == s.failOp {
		s.failOp = "" // fail once: the rollback's own calls work
		return fmt.Errorf("injected failure of systemd %s", op)
	}
	if s.failAt != 0 && n == s.failAt {
		return fmt.Errorf("injected failure of systemd %s", op)
	}
	return nil
}

func (s *crashSystemd) Enable(ctx context.Context, u ...string) error {
	if err := s.hook("enable"); err != nil {
		return err
	}
	return s.Systemd.Enable(ctx, u...)
}
func (s *crashSystemd) Disable(ctx context.Context, u ...string) error {
	if err := s.hook("disable"); err != nil {
		return err
	}
	return s.Systemd.Disable(ctx, u...)
}
func (s *crashSystemd) UnitFileState(ctx context.Context, u string) (string, error) {
	if err := s.hook("is-enabled"); err != nil {
		return "", err
	}
	return s.Systemd.UnitFileState(ctx, u)
}
func (s *crashSystemd) Reload(ctx context.Context, u string) error {
	if err := s.hook("reload"); err != nil {
		return err
	}
	return s.Systemd.Reload(ctx, u)
}
func (s *crashSystemd) DaemonReload(ctx context.Context) error {
	if err := s.hook("daemon-reload"); err != nil {
		return err
	}
	return s.Systemd.DaemonReload(ctx)
}

// gitLog returns the report of every commit on the branch, oldest first,
// with the heartbeat line dropped.
func gitLog(e *env) ([]string, error) {
	out, err := gitserver.Git(e.srv.Path("cfg"), nil, "rev-list", "--reverse", api.ReportsBranch(node))
	if err != nil {
		return nil, err
	}
	var reps []string
	for _, c := range strings.Fields(out) {
		r, err := gitserver.Git(e.srv.Path("cfg"), nil, "show", c+":"+api.ReportFile)
		if err != nil {
			return nil, err
		}
		var lines []string
		for _, l := range strings.Split(r, "\n") {
			if !strings.HasPrefix(l, "heartbeat:") {
				lines = append(lines, l)
			}
		}
		reps = append(reps, strings.Join(lines, "\n"))
	}
	return reps, nil
}
