//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/demo"
	"stoker.dev/stoker/nodeops"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/test/testutil"
)

// The crash test's config: crashFiles files under /etc/crash, the first
// crashOrig of which exist before Stoker (they have originals), a unit
// and a kernel argument. Variant A manages every file and enables the
// unit; variant B drops the files with originals (they must come back)
// and disables the unit. Every generation changes every file's content.
const (
	crashFiles = 200
	crashOrig  = 50
	crashNode  = "w-crash"
	crashUnit  = "stoker-crash.service"
)

func crashPath(i int) string { return fmt.Sprintf("/etc/crash/f%03d", i) }

func origContent(i int) string { return fmt.Sprintf("original %03d\n", i) }

type crashConfig struct {
	gen     int
	variant string // "A" or "B"
}

func (c crashConfig) manages(i int) bool { return c.variant == "A" || i >= crashOrig }

func (c crashConfig) content(i int) string {
	return fmt.Sprintf("%s %03d gen %d\n", c.variant, i, c.gen)
}

func (c crashConfig) mc() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfig\nmetadata:\n  name: 50-crash\n  labels:\n    machineconfiguration.openshift.io/role: worker\nspec:\n")
	fmt.Fprintf(&b, "  kernelArguments:\n    - crash=%s\n", c.variant)
	b.WriteString("  config:\n    ignition:\n      version: 3.4.0\n    storage:\n      files:\n")
	for i := 0; i < crashFiles; i++ {
		if c.manages(i) {
			fmt.Fprintf(&b, "        - path: %s\n          mode: 0644\n          overwrite: true\n          contents:\n            source: \"data:,%s\"\n", crashPath(i), testutil.URLEscape(c.content(i)))
		}
	}
	fmt.Fprintf(&b, "    systemd:\n      units:\n        - name: %s\n          enabled: %v\n          contents: |\n            [Unit]\n            Description=crash test gen %d\n            [Service]\n            ExecStart=/bin/true\n            [Install]\n            WantedBy=multi-user.target\n",
		crashUnit, c.variant == "A", c.gen)
	return b.String()
}

// state classifies what is on the node: "" when it is exactly c, else
// the first difference.
func (c crashConfig) differs(f *demo.Fleet) string {
	root := f.Root(crashNode)
	for i := 0; i < crashFiles; i++ {
		p := filepath.Join(root, crashPath(i))
		data, err := os.ReadFile(p)
		switch {
		case c.manages(i) && (err != nil || string(data) != c.content(i)):
			return fmt.Sprintf("%s = %q (%v), want %q", crashPath(i), data, err, c.content(i))
		case !c.manages(i) && i < crashOrig:
			// The original is back, content and mode.
			fi, serr := os.Stat(p)
			if err != nil || string(data) != origContent(i) || serr != nil || fi.Mode().Perm() != 0o640 {
				return fmt.Sprintf("%s = %q (%v), want its original back", crashPath(i), data, err)
			}
		}
	}
	unit := filepath.Join(root, "etc/systemd/system", crashUnit)
	if data, err := os.ReadFile(unit); err != nil || !strings.Contains(string(data), fmt.Sprintf("gen %d\n", c.gen)) {
		return fmt.Sprintf("%s: %q %v", unit, data, err)
	}
	_, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants", crashUnit))
	if enabled := err == nil; enabled != (c.variant == "A") {
		return fmt.Sprintf("%s enabled %v, want %v", crashUnit, enabled, c.variant == "A")
	}
	kargs, _ := os.ReadFile(f.KernelArgsFile(crashNode))
	if got := strings.Fields(string(kargs)); len(got) != 1 || got[0] != "crash="+c.variant {
		return fmt.Sprintf("kernel arguments %q, want [crash=%s]", got, c.variant)
	}
	return ""
}

// tempRE is the temporary-file name of an atomic write (renameio's
// ".<name><digits>").
var tempRE = regexp.MustCompile(`^\..+[0-9]+$`)

// leftovers lists temporary files of atomic writes under the node's root
// and state dir (not the Git cache, which is go-git's).
func leftovers(f *demo.Fleet) []string {
	var out []string
	for _, dir := range []string{f.Root(crashNode), f.State(crashNode)} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && p == filepath.Join(f.State(crashNode), "git") {
				return fs.SkipDir
			}
			if d.Type().IsRegular() && tempRE.MatchString(d.Name()) {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// TestCrashKill9DuringApplies (issue 15, finding 1, 2 and the crash test):
// the built binary is killed with SIGKILL at random moments while it
// moves a node between configs of 200 files, a unit and a kernel
// argument, alternately dropping and re-adding files that had originals.
// After every run (one config change, one or more kills, restart) the
// node is exactly at the old or the new config — here always the new one,
// as nothing fails but the process — with its originals intact, no
// journal, no temporary file left, and a report that tells the truth.
// STOKER_CRASH_KILLS sets the number of kills (default 5),
// STOKER_CRASH_SEED the seed (printed on failure).
func TestCrashKill9DuringApplies(t *testing.T) {
	kills := 5
	if v := os.Getenv("STOKER_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("STOKER_CRASH_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
	seed := time.Now().UnixNano()
	if v := os.Getenv("STOKER_CRASH_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("STOKER_CRASH_SEED=%q: %v", v, err)
		}
		seed = n
	}
	rng := rand.New(rand.NewSource(seed))
	t.Logf("crash test: %d kills, seed %d (rerun with STOKER_CRASH_SEED=%d)", kills, seed, seed)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
	}

	cfg := crashConfig{gen: 0, variant: "A"}
	repo := map[string]string{
		"pools/worker.yaml":            pool("worker", "1", false, ""),
		"machineconfigs/50-crash.yaml": cfg.mc(),
	}
	f := newFleet(t, map[string]map[string]string{"main": repo})
	root := f.Root(crashNode)
	if err := os.MkdirAll(filepath.Join(root, "etc/crash"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < crashOrig; i++ {
		p := filepath.Join(root, crashPath(i))
		if err := os.WriteFile(p, []byte(origContent(i)), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	addNodes(t, f, worker(crashNode, "a"))
	converge := func(c crashConfig, prev string) string {
		t.Helper()
		var last *fleetview.FleetView
		v, err := f.WaitFor(ctxT(t, 5*time.Minute), 3*time.Minute, func(v *fleetview.FleetView) bool {
			last = v
			n := nodeOf(v, crashNode)
			p := poolOf(v, "worker")
			return p.Config != "" && p.Config != prev && n.State == api.StateDone && n.CurrentConfig == p.Config && n.DesiredConfig == p.Config
		}, nil)
		if err != nil {
			fail("gen %d (%s): node wedged, not Done on the new config within 3m: %v\n%s", c.gen, c.variant, err, table(last))
		}
		return poolOf(v, "worker").Config
	}
	current := converge(cfg, "")
	if d := cfg.differs(f); d != "" {
		fail("first apply: %s", d)
	}

	outcomes, at := map[string]int{}, map[string]int{}
	start := time.Now()
	killed, runs := 0, 0
	for killed < kills {
		runs++
		prev := cfg
		cfg = crashConfig{gen: prev.gen + 1, variant: map[string]string{"A": "B", "B": "A"}[prev.variant]}
		if _, err := f.Commit("main", map[string]string{"machineconfigs/50-crash.yaml": cfg.mc()}, nil, fmt.Sprintf("crash gen %d", cfg.gen)); err != nil {
			t.Fatal(err)
		}
		perRun := 1 + rng.Intn(3)
		for k := 0; k < perRun && killed < kills; k++ {
			// Kill at a random moment: some time after the apply journal
			// appears (mid-apply), some time after it is marked applied
			// (the simulated reboot, validation, commit and its cleanup),
			// or some time after the (re)start (planning, recovery).
			waitJournal := func(ok func(j *nodeops.Journal) bool) {
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) {
					if j, err := nodeops.ReadJournal(f.State(crashNode)); err == nil && j != nil && ok(j) {
						return
					}
					time.Sleep(3 * time.Millisecond)
				}
			}
			switch rng.Intn(3) {
			case 0:
				waitJournal(func(*nodeops.Journal) bool { return true })
				time.Sleep(time.Duration(rng.Int63n(int64(1500 * time.Millisecond))))
			case 1:
				waitJournal(func(j *nodeops.Journal) bool { return j.State != nodeops.JournalApplying })
				time.Sleep(time.Duration(rng.Int63n(int64(800 * time.Millisecond))))
			default:
				time.Sleep(time.Duration(rng.Int63n(int64(4 * time.Second))))
			}
			f.Agent(crashNode).Kill()
			killed++
			phase := "no journal"
			if j, err := nodeops.ReadJournal(f.State(crashNode)); err != nil {
				phase = "journal unreadable"
			} else if j != nil {
				phase = "journal " + j.State
			}
			at[phase]++
			// Nothing half-written is ever in place: each managed file
			// is one of the two configs' content or its original.
			for i := 0; i < crashFiles; i++ {
				data, err := os.ReadFile(filepath.Join(root, crashPath(i)))
				s := string(data)
				ok := err == nil && (s == prev.content(i) || s == cfg.content(i) || (i < crashOrig && s == origContent(i)))
				if !ok {
					fail("kill %d (gen %d): %s holds %q (%v): neither old, new nor original", killed, cfg.gen, crashPath(i), s, err)
				}
			}
			if _, err := f.StartAgent(crashNode); err != nil {
				t.Fatal(err)
			}
		}
		current = converge(cfg, current)
		outcome := "new"
		switch {
		case cfg.differs(f) == "":
		case prev.differs(f) == "":
			outcome = "old"
		default:
			fail("run %d (gen %d, %d kills so far): neither all-old nor all-new: new: %s; old: %s", runs, cfg.gen, killed, cfg.differs(f), prev.differs(f))
		}
		outcomes[outcome]++
		if outcome != "new" {
			fail("run %d: node Done on %s but at the old config: the report does not tell the truth", runs, current)
		}
		r, err := f.Report(crashNode)
		if err != nil || r.State != api.StateDone || r.CurrentConfig != current || r.Reason != "" {
			fail("run %d: report %+v %v, want Done at %s", runs, r, err, current)
		}
		if j, err := nodeops.ReadJournal(f.State(crashNode)); j != nil || err != nil {
			fail("run %d: journal left: %+v %v", runs, j, err)
		}
		if l := leftovers(f); len(l) > 0 {
			fail("run %d: temporary files left: %v", runs, l)
		}
		if cfg.variant == "A" {
			for i := 0; i < crashOrig; i++ {
				data, err := os.ReadFile(nodeops.OrigPath(f.State(crashNode), crashPath(i)))
				if err != nil || string(data) != origContent(i) {
					fail("run %d: original of %s kept as %q (%v)", runs, crashPath(i), data, err)
				}
			}
		}
	}
	t.Logf("crash test: %d kills over %d runs in %s, seed %d; outcomes: %s; killed with: %s",
		killed, runs, time.Since(start).Round(time.Second), seed, counts(outcomes), counts(at))
}

// TestTempFilesSweptAtRestart (issue 15, finding 2), from outside:
// temporary files a killed write left next to managed files and in the
// state dir are gone after the agent restarts; look-alikes that are not
// Stoker's stay.
func TestTempFilesSweptAtRestart(t *testing.T) {
	t.Parallel()
	f := newFleet(t, map[string]map[string]string{"main": simpleRepo("1", false, "v1")})
	addNodes(t, f, worker("w-0", "a"))
	waitConverged(t, f, "", 2*time.Minute)
	f.Agent("w-0").Kill()
	root, state := f.Root("w-0"), f.State("w-0")
	plant := func(p string) string {
		if err := os.WriteFile(p, []byte("secret managed content\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dir := filepath.Dir(filepath.Join(root, e2eFile))
	gone := []string{
		plant(filepath.Join(dir, "."+filepath.Base(e2eFile)+"5577006791947779410")),
		plant(filepath.Join(state, ".agent-state.json8674665223082153551")),
	}
	kept := []string{
		plant(filepath.Join(dir, "."+filepath.Base(e2eFile)+".swp")),
		plant(filepath.Join(dir, ".other.conf123")),
		plant(filepath.Join(root, "etc", ".app.conf42")),
	}
	if _, err := f.StartAgent("w-0"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		left := 0
		for _, p := range gone {
			if _, err := os.Lstat(p); err == nil {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d temporary files still there 2m after the restart: %v", left, gone)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range kept {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, []byte("secret managed content\n")) {
			t.Errorf("%s is not Stoker's, but it was touched: %v", p, err)
		}
	}
}

func counts(m map[string]int) string {
	var keys []string
	for k, v := range m {
		keys = append(keys, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
