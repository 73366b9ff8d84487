package agent

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"stoker.dev/stoker/api"
)

// tinyTmpfs mounts a tmpfs of size at dir for the test (root only) and
// returns a function that fills it up to the last byte.
func tinyTmpfs(t *testing.T, dir, size string) (fill func(), free func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	must(t, os.MkdirAll(dir, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	filler := filepath.Join(dir, "filler")
	fill = func() {
		f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		must(t, err)
		defer f.Close()
		chunk := bytes.Repeat([]byte{'x'}, 4096)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
		for _, n := range []int{1024, 256, 64, 1} { // the last bytes too
			for {
				if _, err := f.Write(chunk[:n]); err != nil {
					break
				}
			}
		}
	}
	free = func() { must(t, os.Remove(filler)) }
	return fill, free
}

// TestFullStateDirReported: /var fills up (a tiny tmpfs holding the state
// dir and, by default, the Git cache) just after the agent fetched a new
// target. The agent cannot save its state: it reports Degraded with the
// reason through a report commit built in memory (the cache cannot take
// it either), applies nothing, and recovers once space is freed. Before,
// the node stayed Done at the old config with no reason.
func TestFullStateDirReported(t *testing.T) {
	e := newEnv(t)
	fill, free := tinyTmpfs(t, e.stateDir, "4m")
	o := e.options()
	o.WorkDir = "" // <state-dir>/git: on the same full file system
	e.publish(c1, livePolicy)
	must(t, e.converge(o))

	e.publish(c2, livePolicy)
	full := o
	log, hook := logtest.NewNullLogger()
	full.Log = log
	full.CrashAt = func(point string) {
		if point == "fetched" {
			fill()
		}
	}
	err := Run(t.Context(), full)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Run on a full state dir = %v, want ENOSPC", err)
	}
	r := e.report()
	if r.State != api.StateDegraded || !strings.Contains(r.Reason, "no space left on device") ||
		!strings.Contains(r.Reason, e.stateDir) || r.CurrentConfig != c1.Name {
		t.Fatalf("report %+v, want Degraded at %s naming the full state dir", r, c1.Name)
	}
	if !e.at(c1) {
		t.Fatal("the node left c1")
	}
	spilled := false
	for _, en := range hook.AllEntries() {
		spilled = spilled || strings.Contains(en.Message, "committing from memory")
	}
	if !spilled {
		t.Fatal("the report did not need the in-memory commit: the test did not fill the Git cache's disk")
	}

	free()
	must(t, e.converge(o))
	if r := e.report(); r.State != api.StateDone || r.CurrentConfig != c2.Name || !e.at(c2) {
		t.Fatalf("after freeing space: report %+v, at c2 %v", r, e.at(c2))
	}
}
