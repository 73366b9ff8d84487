package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

func TestFreshNodeWithoutTarget(t *testing.T) {
	e := newEnv(t)
	e.srv.SeedRepo(t, "cfg", map[string]string{"README": "x"}, api.StatusBranch)
	must(t, e.converge(e.options()))
	r := e.report()
	if r.State != api.StateDone || r.CurrentConfig != "" || r.Labels["node-role.kubernetes.io/worker"] != "" || len(r.Labels) != 1 {
		t.Fatalf("report = %+v, want Done, no config, with labels", r)
	}
}

func TestUpdates(t *testing.T) {
	e := newEnv(t)
	// Fresh node, live policy: converges without reboot.
	e.publish(c1, livePolicy)
	must(t, e.converge(e.options()))
	if r := e.report(); r.State != api.StateDone || r.CurrentConfig != c1.Name || r.DesiredConfig != c1.Name {
		t.Fatalf("after c1: report %+v", r)
	}
	if !e.at(c1) || e.reboots != 0 {
		t.Fatalf("after c1: at c1 %v, reboots %d", e.at(c1), e.reboots)
	}
	// Reload-only update: no reboot, no drain, the reload ran.
	e.publish(c2, livePolicy)
	must(t, e.converge(e.options()))
	r := e.report()
	if r.State != api.StateDone || r.CurrentConfig != c2.Name || r.Plan == nil || r.Plan.Action != api.ActionReload {
		t.Fatalf("after c2: report %+v", r)
	}
	if !e.at(c2) || e.reboots != 0 || e.drainState() != "" {
		t.Fatalf("after c2: at c2 %v, reboots %d, drain %q", e.at(c2), e.reboots, e.drainState())
	}
	if log := strings.Join(e.sd.Systemd.(*nodeops.RootSystemd).Log(), ","); !strings.Contains(log, "reload stoker-test.service") {
		t.Fatalf("systemd log %q lacks the reload", log)
	}
	// Reboot update (no policy): drain, simulated reboot, validate, Done.
	e.publish(c1, nil)
	must(t, e.converge(e.options()))
	r = e.report()
	if r.State != api.StateDone || r.CurrentConfig != c1.Name || r.Plan.Action != api.ActionReboot {
		t.Fatalf("after reboot update: report %+v", r)
	}
	if !e.at(c1) || e.reboots != 1 || e.drainState() != "uncordon" {
		t.Fatalf("after reboot update: at c1 %v, reboots %d, drain %q", e.at(c1), e.reboots, e.drainState())
	}
	boot, err := nodeops.BootID(e.root, e.stateDir)
	must(t, err)
	if r.BootID != boot {
		t.Fatalf("report boot id %s, want the new boot %s", r.BootID, boot)
	}
}

func TestRefusesBadConfig(t *testing.T) {
	bad := cfg("rendered-worker-bad", map[string]string{"a.conf": "x"}, nil)
	bad.Config.Storage.Files = append(bad.Config.Storage.Files, bad.Config.Storage.Files[0])
	bad.Config.Storage.Files[1].Path = "/usr/bin/evil"
	tests := []struct {
		name string
		r    *api.Rendered
		want string
	}{
		{"path outside allowed prefixes", bad, "/usr/bin/evil"},
		{"traversal", func() *api.Rendered {
			r := cfg("rendered-worker-bad2", map[string]string{"a.conf": "x"}, nil)
			r.Config.Storage.Files[0].Path = "/etc/../usr/x"
			return r
		}(), "spec.config.storage.files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.publish(tc.r, nil)
			if err := e.converge(e.options()); !errors.Is(err, ErrDegraded) {
				t.Fatalf("--once returned %v, want ErrDegraded (a refused update exits non-zero)", err)
			}
			r := e.report()
			if r.State != api.StateDegraded || !strings.Contains(r.Reason, "refusing "+tc.r.Name) || !strings.Contains(r.Reason, tc.want) {
				t.Fatalf("report %+v, want Degraded refusing %s mentioning %q", r, tc.r.Name, tc.want)
			}
			if !e.at(nil) {
				t.Fatal("something was written under /etc/stoker")
			}
			if _, err := os.Stat(filepath.Join(e.root, "usr")); err == nil {
				t.Fatal("something was written under /usr")
			}
		})
	}
}

func TestFailureRollsBack(t *testing.T) {
	tests := []struct {
		name   string
		policy *api.NodeDisruptionPolicy
		fail   string // systemd op to fail
		kargs  bool
		reason string
	}{
		{"enable fails after files written", livePolicy, "enable", false, "set enablement of unit y.service"},
		{"reload fails after apply", livePolicy, "reload", false, "reload stoker-test.service"},
		{"kernel arguments unsupported after files written", nil, "", true, "update kernel arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.publish(c1, livePolicy)
			must(t, e.converge(e.options()))
			want := cfg(c2.Name, map[string]string{"a.conf": "two", "c.conf": "sea"}, []string{"y.service"}, "ssh-ed25519 AAAAkey2 k2")
			if tc.kargs {
				want.KernelArguments = []string{"nosmt"}
			}
			e.publish(want, tc.policy)
			e.sd.failOp = tc.fail
			if err := e.converge(e.options()); !errors.Is(err, ErrDegraded) {
				t.Fatalf("--once returned %v, want ErrDegraded (a failed update exits non-zero)", err)
			}
			r := e.report()
			if r.State != api.StateDegraded || r.CurrentConfig != c1.Name || !strings.Contains(r.Reason, tc.reason) {
				t.Fatalf("report %+v, want Degraded at %s mentioning %q", r, c1.Name, tc.reason)
			}
			if !e.at(c1) {
				t.Fatal("node is not back at c1")
			}
			if j, _ := nodeops.ReadJournal(e.stateDir); j != nil {
				t.Fatalf("journal left: %+v", j)
			}
			if e.reboots != 0 {
				t.Fatal("rebooted after a failed apply")
			}
			if s := e.drainState(); s != "" && s != "uncordon" {
				t.Fatalf("left cordoned: %q", s)
			}
		})
	}
}

func TestReportHistoryOnlyChanges(t *testing.T) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	must(t, e.converge(e.options()))
	n := e.reportCommits()
	for i := 0; i < 3; i++ {
		must(t, e.converge(e.options()))
	}
	if got := e.reportCommits(); got != n {
		t.Fatalf("report commits %d after idle restarts, want %d (nothing changed)", got, n)
	}
	e.publish(c2, livePolicy)
	must(t, e.converge(e.options()))
	if got := e.reportCommits(); got <= n {
		t.Fatalf("report commits %d after an update, want more than %d", got, n)
	}
	// Every commit on the branch holds a report that differs from its parent's.
	out, err := gitLog(e)
	must(t, err)
	prev := ""
	for _, rep := range out {
		if rep == prev {
			t.Fatal("two consecutive identical reports on the branch")
		}
		prev = rep
	}
}
