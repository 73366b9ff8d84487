package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// TestCrashMatrix kills the agent at every step boundary of an update
// (and at every systemd call inside Apply), restarts it with the same
// state dir, and checks that recovery leaves the node exactly at the old
// or the new config, that the restarted agent finishes at the new one,
// and that the final report says so.
func TestCrashMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("crash matrix is slow")
	}
	kinds := []struct {
		name   string
		policy *api.NodeDisruptionPolicy
	}{
		{"reboot", nil},
		{"live", livePolicy},
	}
	reached := map[string]bool{}
	var rows []string
	for _, k := range kinds {
		// Dry run: how many systemd calls does the update make?
		e := newEnv(t)
		e.publish(c1, livePolicy)
		must(t, e.converge(e.options()))
		e.publish(c2, k.policy)
		e.sd.calls = 0
		must(t, e.converge(e.options()))
		calls := e.sd.calls
		points := append([]string(nil), CrashPoints...)
		if k.name == "reboot" {
			for i := 1; i <= calls; i++ {
				points = append(points, fmt.Sprintf("systemd#%d", i))
			}
		}
		for _, point := range points {
			t.Run(k.name+"/"+point, func(t *testing.T) {
				row, hit := crashAt(t, k.policy, point)
				if hit {
					reached[point] = true
				}
				rows = append(rows, k.name+"\t"+point+"\t"+row)
			})
		}
	}
	for _, p := range CrashPoints {
		if !reached[p] {
			t.Errorf("crash point %s never reached", p)
		}
	}
	sort.Strings(rows)
	t.Logf("crash matrix (%d runs):\nkind\tpoint\tresult\n%s", len(rows), strings.Join(rows, "\n"))
}

func crashAt(t *testing.T, policy *api.NodeDisruptionPolicy, point string) (string, bool) {
	e := newEnv(t)
	e.publish(c1, livePolicy)
	must(t, e.converge(e.options()))
	e.publish(c2, policy)
	o := e.options()
	fired := false
	if n, ok := strings.CutPrefix(point, "systemd#"); ok {
		fmt.Sscan(n, &e.sd.crashAt)
		e.sd.calls = 0
	} else {
		o.CrashAt = func(p string) {
			if p == point && !fired {
				fired = true
				panic(crashPanic(p))
			}
		}
	}
	crashed := ""
	for i := 0; i < 5 && crashed == ""; i++ {
		before := e.reboots
		crashed, _ = e.runOnce(o)
		if crashed == "" && e.reboots == before {
			break
		}
	}
	e.sd.crashAt, o.CrashAt = 0, nil
	if crashed == "" {
		if !e.at(c2) || e.report().State != api.StateDone {
			t.Fatalf("no crash, but not Done at c2")
		}
		return "not reached", false
	}
	// Recovery alone puts the node at the old or the new config.
	ctx := context.Background()
	ro := o
	a, err := newAgent(ctx, &ro)
	must(t, err)
	must(t, a.recover(ctx))
	atOld, atNew := e.at(c1), e.at(c2)
	if atOld == atNew {
		t.Fatalf("crash at %s: after recovery at old %v, at new %v (stage %s)", crashed, atOld, atNew, a.st.Stage)
	}
	which := "old"
	if atNew {
		which = "new"
	}
	stage := a.st.Stage
	// The restarted agent finishes the update; the report tells the truth.
	must(t, e.converge(o))
	if !e.at(c2) {
		t.Fatalf("crash at %s: not at c2 after restart", crashed)
	}
	r := e.report()
	if r.State != api.StateDone || r.CurrentConfig != c2.Name || r.DesiredConfig != c2.Name || r.Reason != "" {
		t.Fatalf("crash at %s: final report %+v", crashed, r)
	}
	if j, _ := nodeops.ReadJournal(e.stateDir); j != nil {
		t.Fatalf("crash at %s: journal left", crashed)
	}
	st, err := LoadState(e.stateDir)
	must(t, err)
	if st.Stage != StageIdle || st.Current != c2.Name || st.Cordoned {
		t.Fatalf("crash at %s: final state %+v", crashed, st)
	}
	if s := e.drainState(); s != "" && s != "uncordon" {
		t.Fatalf("crash at %s: node left %q", crashed, s)
	}
	return fmt.Sprintf("crashed at %s; recovered (stage %q) at %s config; restart → Done at %s, %d reboot(s)", crashed, stage, which, c2.Name, e.reboots), true
}
