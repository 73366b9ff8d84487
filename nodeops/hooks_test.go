package nodeops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hookRoot is an offline tree with the given hooks of point (name →
// script body), mode 0755.
func hookRoot(t *testing.T, point string, hooks map[string]string) (root, dir string) {
	t.Helper()
	root = t.TempDir()
	dir = filepath.Join(root, HooksDir, point)
	must(t, os.MkdirAll(dir, 0o755))
	for name, body := range hooks {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755))
	}
	return root, dir
}

func offlineRunner(root string, timeout time.Duration) *HookRunner {
	return NewHookRunner(Host{Root: root, Offline: true}, "", timeout)
}

// TestHooksRunPartsOrder: hooks run in lexical order with the point and
// the root in their environment; names run-parts skips, directories and
// non-executable files are skipped; the first failure stops the point
// and carries the hook's path and output.
func TestHooksRunPartsOrder(t *testing.T) {
	root, dir := hookRoot(t, HookBeforeApply, map[string]string{
		"20-second": `echo "second $STOKER_HOOK $STOKER_NODE" >> "$STOKER_ROOT/ran"` + "\n",
		"10-first":  `echo "first $STOKER_HOOK" >> "$STOKER_ROOT/ran"` + "\n",
		"30-fail":   "echo checking; echo 'pool is not healthy' >&2; exit 3\n",
		"40-never":  `echo never >> "$STOKER_ROOT/ran"` + "\n",
		"15-x.bak":  `echo skipped-name >> "$STOKER_ROOT/ran"` + "\n",
		".hidden":   `echo skipped-dot >> "$STOKER_ROOT/ran"` + "\n",
	})
	must(t, os.WriteFile(filepath.Join(dir, "12-off"), []byte("#!/bin/sh\necho off >> \"$STOKER_ROOT/ran\"\n"), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "13-dir"), 0o755))

	ran, err := offlineRunner(root, time.Minute).Run(context.Background(), HookBeforeApply, "STOKER_NODE=n1")
	var he *HookError
	if !errors.As(err, &he) || !errors.Is(err, ErrHookFailed) {
		t.Fatalf("Run = %v, want a *HookError", err)
	}
	want := HooksDir + "/before-apply/30-fail"
	if he.Hook != want || he.Point != HookBeforeApply || !strings.Contains(he.Err.Error(), "exit status 3") {
		t.Errorf("HookError %+v, want %s exit status 3", he, want)
	}
	if he.Output != "checking\npool is not healthy\n" {
		t.Errorf("output %q", he.Output)
	}
	if !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), ": pool is not healthy") {
		t.Errorf("error %q does not name the hook and its last line", err)
	}
	if len(ran) != 3 || ran[2] != want {
		t.Errorf("ran %v", ran)
	}
	if got := read(t, root, "ran"); got != "first before-apply\nsecond before-apply n1\n" {
		t.Errorf("ran file %q", got)
	}
	// A root-owned link on the way (/etc/stoker -> /var/lib/stoker-etc,
	// as RHCOS links /home into /var) is followed.
	must(t, os.MkdirAll(filepath.Join(root, "var/lib"), 0o755))
	must(t, os.Rename(filepath.Join(root, "etc/stoker"), filepath.Join(root, "var/lib/stoker-etc")))
	must(t, os.Symlink("../var/lib/stoker-etc", filepath.Join(root, "etc/stoker")))
	must(t, os.Remove(filepath.Join(dir, "30-fail")))
	must(t, os.Remove(filepath.Join(root, "ran")))
	if ran, err := offlineRunner(root, time.Minute).Run(context.Background(), HookBeforeApply, "STOKER_NODE=n1"); err != nil || len(ran) != 3 {
		t.Fatalf("through a root-owned link: ran %v, %v", ran, err)
	}
	// No directory, no hooks.
	if ran, err := offlineRunner(root, time.Minute).Run(context.Background(), HookAfterReboot); err != nil || len(ran) != 0 {
		t.Errorf("missing point dir: %v %v", ran, err)
	}
	if _, err := offlineRunner(root, time.Minute).Run(context.Background(), "../../bin"); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("unknown point = %v, want refused", err)
	}
}

// TestHooksUnsafeRefused: a hook point with anything only a non-root
// user could have put there fails before any of its hooks runs.
func TestHooksUnsafeRefused(t *testing.T) {
	cases := []struct {
		name  string
		root  bool // needs root (chown to another uid)
		setup func(t *testing.T, root, dir string)
		hook  string
		why   string
	}{
		{"group-writable hook", false, func(t *testing.T, root, dir string) {
			must(t, os.Chmod(filepath.Join(dir, "50-bad"), 0o775))
		}, "50-bad", "writable by group or others (mode 0775)"},
		{"other-writable directory", false, func(t *testing.T, root, dir string) {
			must(t, os.Chmod(dir, 0o777))
		}, "", "writable by group or others (mode 0777)"},
		{"other-writable parent", false, func(t *testing.T, root, dir string) {
			must(t, os.Chmod(filepath.Join(root, "etc/stoker"), 0o777))
		}, "..", "/etc/stoker: unsafe path: writable by group or others (mode 0777)"},
		{"symlink hook", false, func(t *testing.T, root, dir string) {
			must(t, os.Symlink("/bin/true", filepath.Join(dir, "60-link")))
		}, "60-link", "a symlink"},
		{"fifo", false, func(t *testing.T, root, dir string) {
			must(t, syscallMkfifo(filepath.Join(dir, "70-fifo")))
		}, "70-fifo", "not a regular file"},
		{"directory is a symlink", false, func(t *testing.T, root, dir string) {
			must(t, os.RemoveAll(dir))
			must(t, os.MkdirAll(filepath.Join(root, "srv/hooks"), 0o755))
			must(t, os.Symlink("/srv/hooks", dir))
		}, "", "not a directory"},
		{"hook owned by a user", true, func(t *testing.T, root, dir string) {
			must(t, os.Chown(filepath.Join(dir, "50-bad"), 1000, 1000))
		}, "50-bad", "not owned by root"},
		{"parent link planted by a user", true, func(t *testing.T, root, dir string) {
			// /etc/stoker is a user's link to their own directory.
			must(t, os.RemoveAll(filepath.Join(root, "etc/stoker")))
			must(t, os.MkdirAll(filepath.Join(root, "home/alice/hooks.d/before-apply"), 0o755))
			must(t, os.Chown(filepath.Join(root, "home/alice"), 1000, 1000))
			must(t, os.Symlink("/home/alice", filepath.Join(root, "etc/stoker")))
			must(t, os.Lchown(filepath.Join(root, "etc/stoker"), 1000, 1000))
		}, "", "symlink /etc/stoker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to give files to another uid")
			}
			root, dir := hookRoot(t, HookBeforeApply, map[string]string{
				"10-ok":  `echo ran >> "$STOKER_ROOT/ran"` + "\n",
				"50-bad": `echo ran-bad >> "$STOKER_ROOT/ran"` + "\n",
			})
			tc.setup(t, root, dir)
			_, err := offlineRunner(root, time.Minute).Run(context.Background(), HookBeforeApply)
			var he *HookError
			if !errors.As(err, &he) || !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Run = %v, want an unsafe-path refusal saying %q", err, tc.why)
			}
			wantHook := HooksDir + "/before-apply"
			if tc.hook == ".." {
				wantHook = "/etc/stoker"
			} else if tc.hook != "" {
				wantHook += "/" + tc.hook
			}
			if he.Hook != wantHook {
				t.Errorf("refusal names %s, want %s", he.Hook, wantHook)
			}
			if _, err := os.Stat(filepath.Join(root, "ran")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a hook ran before the refusal: %v", err)
			}
		})
	}
}

// TestHookTimeoutKillsGroup: a hook that hangs, with a child of its own
// holding its output open, is killed with its whole process group when
// its timeout ends; Run returns and says so.
func TestHookTimeoutKillsGroup(t *testing.T) {
	root, _ := hookRoot(t, HookAfterReboot, map[string]string{
		"10-hang": "sleep 600 &\necho $! > \"$STOKER_ROOT/child\"\necho started\nsleep 600\n",
	})
	start := time.Now()
	_, err := offlineRunner(root, time.Second).Run(context.Background(), HookAfterReboot)
	took := time.Since(start)
	var he *HookError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "timed out after 1s") || he.Output != "started\n" {
		t.Fatalf("Run = %v (output %q), want a timeout with the output so far", err, he.Output)
	}
	if took > time.Minute {
		t.Errorf("Run took %s: the hung hook wedged it", took)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(read(t, root, "child")))
	must(t, err)
	deadline := time.Now().Add(time.Minute)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the hook's child %d survived the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestHookOutputBounded: only the last HookOutputBytes of a chatty
// hook's output are kept.
func TestHookOutputBounded(t *testing.T) {
	root, _ := hookRoot(t, HookBeforeDrain, map[string]string{
		"10-chatty": "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; echo the end >&2; exit 1\n",
	})
	_, err := offlineRunner(root, time.Minute).Run(context.Background(), HookBeforeDrain)
	var he *HookError
	if !errors.As(err, &he) {
		t.Fatalf("Run = %v", err)
	}
	if len(he.Output) > HookOutputBytes || !strings.HasSuffix(he.Output, "line 1999\nthe end\n") {
		t.Errorf("output is %d bytes ending %q", len(he.Output), he.Output[max(0, len(he.Output)-40):])
	}
}

func syscallMkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }

// TestHookOrphanReaped: a hook left running by an agent that was killed
// (its own process group survives the agent's SIGKILL) is killed by
// ReapOrphan at the next start; a record whose pid is another process
// now is dropped without killing anything.
func TestHookOrphanReaped(t *testing.T) {
	root, _ := hookRoot(t, HookAfterReboot, map[string]string{
		"10-hang": "echo $$ > \"$STOKER_ROOT/pid\"\nsleep 600 &\necho $! > \"$STOKER_ROOT/child\"\nwait\n",
	})
	state := t.TempDir()
	r := NewHookRunner(Host{Root: root, Offline: true}, state, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := r.Run(ctx, HookAfterReboot); done <- err }()
	// The runner records the hook once it has started it, so the hook
	// may be running (and have written child) a moment before the
	// record exists: wait for both.
	deadline := time.Now().Add(time.Minute)
	for {
		_, errChild := os.Stat(filepath.Join(root, "child"))
		_, errPID := os.Stat(HookPIDPath(state))
		if errChild == nil && errPID == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook did not start (%v) or was not recorded (%v)", errChild, errPID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A new agent (the old one "killed": its Run is still waiting).
	pgid, err := NewHookRunner(Host{Root: root, Offline: true}, state, time.Hour).ReapOrphan()
	must(t, err)
	hookPid, _ := strconv.Atoi(strings.TrimSpace(read(t, root, "pid")))
	if pgid != hookPid {
		t.Fatalf("reaped %d, want the hook's group %d", pgid, hookPid)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "signal: killed") {
			t.Errorf("the reaped hook's Run = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the hook was not killed")
	}
	child, _ := strconv.Atoi(strings.TrimSpace(read(t, root, "child")))
	for alive(child) {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatalf("the hook's child %d survived", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A stale record naming a live process that is not the hook (this
	// test's own pid, another start time) kills nothing.
	must(t, os.WriteFile(HookPIDPath(state), []byte(fmt.Sprintf("%d 1 %s\n", os.Getpid(), kernelBoot())), 0o600))
	if pgid, err := r.ReapOrphan(); err != nil || pgid != 0 {
		t.Fatalf("stale record: reaped %d, %v", pgid, err)
	}
	if _, err := os.Stat(HookPIDPath(state)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record kept: %v", err)
	}
}

// TestHookStoppedWithAgent: when the agent is told to stop (ctx ends),
// a running hook is killed with its group at once and Run says so.
func TestHookStoppedWithAgent(t *testing.T) {
	root, _ := hookRoot(t, HookBeforeApply, map[string]string{"10-hang": "touch \"$STOKER_ROOT/started\"\nsleep 600\n"})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(root, "started")); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err := offlineRunner(root, time.Hour).Run(ctx, HookBeforeApply)
	if err == nil || !strings.Contains(err.Error(), "stopped: context canceled") {
		t.Fatalf("Run = %v, want stopped", err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("Run took %s after the stop", took)
	}
}
