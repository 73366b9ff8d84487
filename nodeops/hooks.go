package nodeops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"stoker.dev/stoker/api"
)

// Hook points: the directories under HooksDir, in the order an update
// reaches them (api owns the names: `stoker diff` shows them too).
const (
	HookBeforeDrain  = api.HookBeforeDrain
	HookBeforeApply  = api.HookBeforeApply
	HookBeforeReboot = api.HookBeforeReboot
	HookAfterReboot  = api.HookAfterReboot
)

// HookPoints are every hook point.
var HookPoints = api.HookPoints

const (
	// DefaultHookTimeout bounds one hook's run (agent --hook-timeout).
	DefaultHookTimeout = 5 * time.Minute
	// HookOutputBytes is how much of a hook's output (stdout and stderr
	// together) is kept: the last bytes, where the error usually is.
	HookOutputBytes = 4096
	// hookWaitDelay bounds how long a hook's output pipe is read after
	// the hook exited or was killed (a grandchild holding it open).
	hookWaitDelay = 5 * time.Second
)

// hookName is run-parts' default name rule: other names (editor
// backups, .rpmsave, dotfiles) are skipped, as run-parts skips them.
var hookName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ErrHookFailed is matched (errors.Is) by every *HookError.
var ErrHookFailed = errors.New("hook failed")

// HookError is a hook point that failed: a hook exited non-zero, timed
// out, or could not run, or an entry of the hook directory is unsafe.
type HookError struct {
	Point string
	// Hook is the hook's host path (the directory for an unsafe entry
	// found before any hook ran).
	Hook string
	// Output is the last HookOutputBytes of the hook's stdout and stderr.
	Output string
	Err    error
}

func (e *HookError) Error() string {
	msg := fmt.Sprintf("%s hook %s: %v", e.Point, e.Hook, e.Err)
	if l := lastLine(e.Output); l != "" {
		msg += ": " + l
	}
	return msg
}

func (e *HookError) Unwrap() error { return e.Err }

// Is makes every HookError match ErrHookFailed.
func (e *HookError) Is(target error) bool { return target == ErrHookFailed }

// HookRunner runs the lifecycle hooks of the host at Root through the
// same mechanism as the OS tools (Tools): on a live host reached through
// a root other than "/", chrooted into it, with the host's PATH; on the
// host itself or in an offline tree, directly from the tree.
//
// Only what only root could have put there runs: a hook is a regular,
// executable file owned by root (or by the agent's own user) and not
// writable by group or others, in directories of the same kind (the
// point's and each one above it up to the root), reached
// through parent symlinks only under the rule Resolve applies to managed
// files. Entries whose names fail run-parts' rule, directories and
// non-executable files are skipped, as run-parts skips them (chmod -x
// turns a hook off); a symlink or any other unsafe entry fails the hook
// point before any of its hooks runs.
type HookRunner struct {
	Root    string
	Tools   Tools
	Timeout time.Duration
	// StateDir, when set, records the running hook's process group
	// (hook.pid), so that ReapOrphan can kill it after the agent itself
	// was killed (SIGKILL leaves the hook's own group running).
	StateDir string
}

// NewHookRunner returns the hook runner of host h, recording running
// hooks in stateDir; timeout <= 0 means DefaultHookTimeout.
func NewHookRunner(h Host, stateDir string, timeout time.Duration) *HookRunner {
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	root := h.Root
	if root == "" {
		root = "/"
	}
	return &HookRunner{Root: root, Tools: toolsFor(h), Timeout: timeout, StateDir: stateDir}
}

// Hooks lists the hooks of point that would run, in order, as host
// paths; an unsafe entry is a *HookError.
func (r *HookRunner) Hooks(point string) ([]string, error) {
	if !validPoint(point) {
		return nil, &HookError{Point: point, Hook: HooksDir, Err: fmt.Errorf("%w: unknown hook point", ErrUnsafePath)}
	}
	dirHost := path.Join(HooksDir, point)
	fail := func(p string, err error) error { return &HookError{Point: point, Hook: p, Err: err} }
	dir, err := Resolve(r.Root, dirHost)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(dirHost, err)
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(dirHost, err)
	}
	if !fi.IsDir() {
		return nil, fail(dirHost, fmt.Errorf("%w: not a directory (%s)", ErrUnsafePath, fi.Mode().Type()))
	}
	if err := trustedEntry(fi); err != nil {
		return nil, fail(dirHost, err)
	}
	// The directories above it too: where another user may rename
	// entries, they could swap the hooks (or take the health gate away).
	for up := path.Dir(dirHost); up != "/"; up = path.Dir(up) {
		// The directory itself, through the safe links Resolve follows.
		p, err := Resolve(r.Root, path.Join(up, "x"))
		if err != nil {
			return nil, fail(up, err)
		}
		ufi, err := os.Lstat(filepath.Dir(p))
		if err != nil {
			return nil, fail(up, err)
		}
		if err := trustedEntry(ufi); err != nil {
			return nil, fail(up, err)
		}
	}
	entries, err := os.ReadDir(dir) // sorted by name: run-parts' order in the C locale
	if err != nil {
		return nil, fail(dirHost, err)
	}
	var hooks []string
	for _, e := range entries {
		if !hookName.MatchString(e.Name()) {
			continue
		}
		p := path.Join(dirHost, e.Name())
		fi, err := os.Lstat(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fail(p, err)
		}
		switch {
		case fi.IsDir():
			continue
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, fail(p, fmt.Errorf("%w: a symlink (install the hook itself)", ErrUnsafePath))
		case !fi.Mode().IsRegular():
			return nil, fail(p, fmt.Errorf("%w: not a regular file (%s)", ErrUnsafePath, fi.Mode().Type()))
		case fi.Mode().Perm()&0o111 == 0:
			continue
		}
		if err := trustedEntry(fi); err != nil {
			return nil, fail(p, err)
		}
		hooks = append(hooks, p)
	}
	return hooks, nil
}

// trustedEntry checks a hook or its directory: owned by root (or the
// agent's user) and writable by no one else.
func trustedEntry(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (st.Uid != 0 && int(st.Uid) != os.Geteuid()) {
		return fmt.Errorf("%w: not owned by root", ErrUnsafePath)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: writable by group or others (mode %04o)", ErrUnsafePath, fi.Mode().Perm())
	}
	return nil
}

func validPoint(p string) bool {
	for _, q := range HookPoints {
		if p == q {
			return true
		}
	}
	return false
}

// Run runs point's hooks one after the other, stopping at the first that
// fails (run-parts --exit-on-error), and returns the host paths of those
// that ran. env is added to each hook's environment, along with
// STOKER_HOOK (the point) and STOKER_ROOT (the host's root as the hook
// sees it). Each hook gets Timeout; when it ends, or ctx does, the hook's
// whole process group is killed, so a hanging hook cannot wedge the
// agent. Hooks must be idempotent: after a crash the agent runs a hook
// point again.
func (r *HookRunner) Run(ctx context.Context, point string, env ...string) ([]string, error) {
	hooks, err := r.Hooks(point)
	if err != nil {
		return nil, err
	}
	var ran []string
	for _, h := range hooks {
		out, err := r.run(ctx, point, h, env)
		ran = append(ran, h)
		if err != nil {
			return ran, &HookError{Point: point, Hook: h, Output: out, Err: err}
		}
	}
	return ran, nil
}

// run runs one hook at host path h and returns its output's tail.
func (r *HookRunner) run(ctx context.Context, point, h string, env []string) (string, error) {
	hctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	p, root := h, "/"
	if r.Tools.Chroot == "" && r.Root != "/" {
		// An offline tree: the hook runs from it, not chrooted.
		var err error
		if p, err = Resolve(r.Root, h); err != nil {
			return "", err
		}
		root = r.Root
	}
	cmd := r.Tools.commandAt(hctx, p)
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + HostPATH, "LANG=C.UTF-8"}
	}
	if cmd.Dir == "" {
		cmd.Dir = root
	}
	cmd.Env = append(cmd.Env, append([]string{"STOKER_HOOK=" + point, "STOKER_ROOT=" + root}, env...)...)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	out := &tailBuffer{max: HookOutputBytes}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = hookWaitDelay
	err := cmd.Start()
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	if err := r.recordRunning(cmd.Process.Pid); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return "", err
	}
	err = cmd.Wait()
	// Whatever the hook left running in its group goes with it.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	r.clearRunning()
	switch {
	case errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		return out.String(), fmt.Errorf("timed out after %s (its process group was killed)", r.Timeout)
	case ctx.Err() != nil:
		return out.String(), fmt.Errorf("stopped: %w", ctx.Err())
	case err != nil:
		return out.String(), err
	}
	return out.String(), nil
}

// recordRunning notes the process group of the hook just started (its
// leader's pid and start time) in the state dir.
func (r *HookRunner) recordRunning(pid int) error {
	if r.StateDir == "" {
		return nil
	}
	start, err := procStart(pid)
	if err != nil {
		return fmt.Errorf("record running hook: %w", err)
	}
	if err := WriteFile(HookPIDPath(r.StateDir), []byte(fmt.Sprintf("%d %s %s\n", pid, start, kernelBoot())),
		FileOptions{Mode: 0o600, UID: -1, GID: -1, DirMode: 0o700}); err != nil {
		return fmt.Errorf("record running hook: %w", err)
	}
	return nil
}

func (r *HookRunner) clearRunning() {
	if r.StateDir != "" {
		_ = os.Remove(HookPIDPath(r.StateDir))
	}
}

// ReapOrphan kills the process group of a hook a killed agent left
// running (recorded in the state dir), and forgets it. The record is
// written right after the hook starts: an agent killed in between leaves
// a hook it cannot know of (a service manager killing the agent's whole
// cgroup, systemd's default KillMode, takes it too). The group is only
// killed when its leader is gone (a pid in use as a process group id is
// not reused) or is still the very process started (same start time, in
// the same boot): never a process that merely got the same pid. It returns the group
// killed, 0 for none.
func (r *HookRunner) ReapOrphan() (int, error) {
	if r.StateDir == "" {
		return 0, nil
	}
	data, err := os.ReadFile(HookPIDPath(r.StateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", HookPIDPath(r.StateDir), err)
	}
	defer r.clearRunning()
	var pid int
	var start, boot string
	if _, err := fmt.Sscanf(string(data), "%d %s %s", &pid, &start, &boot); err != nil || pid <= 1 || boot != kernelBoot() {
		return 0, nil // unreadable, or from an earlier boot: nothing to kill
	}
	if now, err := procStart(pid); err == nil && now != start {
		return 0, nil // the pid is another process now: the group is gone
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		return 0, nil // ESRCH: the group is gone
	}
	return pid, nil
}

// kernelBoot is the boot id of the kernel the agent runs on (pids and
// start times are only comparable within one boot).
func kernelBoot() string {
	data, err := os.ReadFile(KernelBootIDFile)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(data))
}

// procStart is a process's start time (field 22 of /proc/<pid>/stat).
func procStart(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return f[19], nil // fields after the name start at field 3
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max  int
	buf  []byte
	lost bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= b.max {
		b.buf, b.lost = append(b.buf[:0], p[len(p)-b.max:]...), true
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.buf, b.lost = append(b.buf[:0], b.buf[over:]...), true
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// String is the kept output, valid UTF-8 from the first whole rune on.
func (b *tailBuffer) String() string {
	s := string(b.buf)
	if b.lost {
		s = strings.ToValidUTF8(s, "")
	}
	return s
}

// lastLine is the last non-empty line of s, at most 200 bytes.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
