package nspawn

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns "cannot boot
// machines here" from a skip into a failure. CI sets it.
const RequireEnv = "STOKER_REQUIRE_NSPAWN"

// RootfsEnv names the environment variable holding the root filesystem
// hack/nspawn-rootfs.sh printed.
const RootfsEnv = "STOKER_NSPAWN_ROOTFS"

// exitReboot is systemd-nspawn's exit status when the container rebooted.
const exitReboot = 133

// containerPath is PATH for commands run inside the container.
const containerPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrUnavailable is returned (wrapped) when machines cannot be booted here.
var ErrUnavailable = errors.New("systemd-nspawn machines not available")

// ErrNotRunning is returned (wrapped) by Run when the machine is between
// boots or has ended.
var ErrNotRunning = errors.New("machine not running")

// Required reports whether an unavailable environment must fail tests
// instead of skipping them.
func Required() bool { return os.Getenv(RequireEnv) != "" }

// Bind is a host directory (or file) mounted into the machine.
type Bind struct {
	// Source is the host path.
	Source string
	// Target is the path inside the machine; empty means Source.
	Target string
	// ReadOnly mounts it read-only, e.g. a directory of binaries.
	ReadOnly bool
}

// Options configure a machine. The zero value boots the cached root
// filesystem with a name derived from the test's.
type Options struct {
	// Rootfs is the root filesystem to copy; empty means Rootfs().
	Rootfs string
	// Name is the machine (and host) name; empty derives one from t.Name().
	Name string
	// Binds are mounted on every boot.
	Binds []Bind
	// Setup, when set, runs once on the host before the first boot with the
	// host path of the machine's writable root, to install files and units.
	Setup func(root string) error
	// BootTimeout bounds each boot, from starting systemd-nspawn to systemd
	// reporting running; zero means 2 minutes.
	BootTimeout time.Duration
	// StopTimeout bounds a clean poweroff before the machine is killed;
	// zero means 30 seconds.
	StopTimeout time.Duration
}

// Machine is one booted systemd container. Its methods are safe for
// concurrent use.
type Machine struct {
	name    string
	root    string
	dir     string
	console string
	opts    Options
	logf    func(string, ...any)

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever state changes
	boots    int
	leader   int // PID (host namespace) of the container's init; 0 between boots
	nspawn   *os.Process
	stopping bool
	ended    bool
	err      error // why the machine ended, nil for poweroff or Stop
	done     chan struct{}
}

// Available reports why machines cannot be booted here, or nil. It looks for
// root privileges, systemd-nspawn, nsenter and the root filesystem.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: systemd-nspawn needs root", ErrUnavailable)
	}
	for _, bin := range []string{"systemd-nspawn", "nsenter", "mount"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: %s not found (apt-get install systemd-container util-linux): %w", ErrUnavailable, bin, err)
		}
	}
	_, err := Rootfs()
	return err
}

// Skip skips t, or fails it when Required, if machines cannot be booted here.
func Skip(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if Required() {
			t.Fatalf("%v (%s is set, so this fails instead of skipping)", err, RequireEnv)
		}
		t.Skipf("%v; set %s to make this a failure", err, RequireEnv)
	}
}

// Rootfs finds the root filesystem: STOKER_NSPAWN_ROOTFS, else the cache
// entry hack/nspawn-rootfs.sh fills for its current contents.
func Rootfs() (string, error) {
	if d := os.Getenv(RootfsEnv); d != "" {
		if !isRootfs(d) {
			return "", fmt.Errorf("%w: %s=%s holds no bootable systemd root filesystem", ErrUnavailable, RootfsEnv, d)
		}
		return d, nil
	}
	cache := os.Getenv("STOKER_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%w: find the cache: %w", ErrUnavailable, err)
		}
		cache = filepath.Join(home, ".cache", "stoker")
	}
	script, err := findScript()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	data, err := os.ReadFile(script)
	if err != nil {
		return "", fmt.Errorf("%w: read %s: %w", ErrUnavailable, script, err)
	}
	// The same key the script derives: the first 12 hex digits of its hash.
	sum := sha256.Sum256(data)
	d := filepath.Join(cache, "nspawn-bookworm-"+hex.EncodeToString(sum[:])[:12], "rootfs")
	if !isRootfs(d) {
		return "", fmt.Errorf("%w: no root filesystem at %s (run %s, or set %s)", ErrUnavailable, d, script, RootfsEnv)
	}
	return d, nil
}

func isRootfs(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "lib", "systemd", "systemd"))
	return err == nil && fi.Mode().IsRegular()
}

// findScript walks up from the working directory to the module root and
// returns its hack/nspawn-rootfs.sh.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find hack/nspawn-rootfs.sh: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "hack", "nspawn-rootfs.sh"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find hack/nspawn-rootfs.sh: no go.mod above the working directory")
		}
		dir = parent
	}
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// machineName derives a valid, unique host name from a test name.
func machineName(testName string) string {
	n := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	if len(n) > 40 {
		n = strings.TrimRight(n[:40], "-")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	if n == "" {
		n = "node"
	}
	return n + "-" + hex.EncodeToString(b)
}

// Boot copies the root filesystem, boots it and waits until systemd is up
// (boot 1). It fails t when that does not happen; the machine is stopped
// and its copy removed when t ends.
func Boot(t testing.TB, opts Options) *Machine {
	t.Helper()
	Skip(t)
	if opts.Rootfs == "" {
		r, err := Rootfs()
		if err != nil {
			t.Fatal(err)
		}
		opts.Rootfs = r
	}
	if opts.Name == "" {
		opts.Name = machineName(t.Name())
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 2 * time.Minute
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 30 * time.Second
	}
	dir := t.TempDir()
	m, err := newMachine(dir, opts, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("stop machine %s: %v", m.name, err)
		}
		if err := m.release(); err != nil {
			t.Errorf("release machine %s: %v", m.name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), opts.BootTimeout)
	defer cancel()
	if err := m.WaitBoot(ctx, 1); err != nil {
		t.Fatalf("boot machine %s: %v\nconsole:\n%s", m.name, err, m.ConsoleTail(60))
	}
	return m
}

// newMachine prepares the machine's root under dir and starts booting it.
func newMachine(dir string, opts Options, logf func(string, ...any)) (*Machine, error) {
	m := &Machine{
		name:    opts.Name,
		dir:     dir,
		root:    filepath.Join(dir, "root"),
		console: filepath.Join(dir, "console.log"),
		opts:    opts,
		logf:    logf,
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	start := time.Now()
	how, err := m.prepareRoot()
	if err != nil {
		_ = m.release()
		return nil, err
	}
	logf("machine %s: root %s ready (%s) in %s", m.name, m.root, how, time.Since(start).Round(time.Millisecond))
	if err := m.personalise(); err != nil {
		_ = m.release()
		return nil, err
	}
	if opts.Setup != nil {
		if err := opts.Setup(m.root); err != nil {
			_ = m.release()
			return nil, fmt.Errorf("set up machine %s: %w", m.name, err)
		}
	}
	go m.loop()
	return m, nil
}

// prepareRoot makes the machine's writable root: an overlay over the cached
// root filesystem when the kernel allows it (instant, shares the cache),
// else a copy (reflinked where the filesystem can).
func (m *Machine) prepareRoot() (string, error) {
	upper, work := filepath.Join(m.dir, "upper"), filepath.Join(m.dir, "work")
	for _, d := range []string{m.root, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", d, err)
		}
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", m.opts.Rootfs, upper, work)
	err := syscall.Mount("overlay", m.root, "overlay", 0, data)
	if err == nil {
		return "overlay", nil
	}
	m.logf("machine %s: overlay over %s failed (%v), copying instead", m.name, m.opts.Rootfs, err)
	if err := os.Remove(m.root); err != nil {
		return "", fmt.Errorf("remove %s: %w", m.root, err)
	}
	out, err := exec.Command("cp", "-a", "--reflink=auto", m.opts.Rootfs, m.root).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("copy %s to %s: %w: %s", m.opts.Rootfs, m.root, err, out)
	}
	return "copy", nil
}

// personalise gives the machine its own machine ID and host name (its
// machine name), kept across reboots as on a real node.
func (m *Machine) personalise() error {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("generate machine id for %s: %w", m.name, err)
	}
	for _, f := range []struct {
		name, content string
		mode          os.FileMode
	}{
		{"machine-id", hex.EncodeToString(id), 0o444},
		{"hostname", m.name, 0o644},
	} {
		p := filepath.Join(m.root, "etc", f.name)
		if err := os.WriteFile(p, []byte(f.content+"\n"), f.mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// release unmounts the overlay, if any. The directory itself belongs to the
// caller (t.TempDir).
func (m *Machine) release() error {
	if err := syscall.Unmount(m.root, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		// Busy (a process still holds a file): detach it so the directory
		// can go, and say so.
		if err2 := syscall.Unmount(m.root, syscall.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmount %s: %w", m.root, err)
		}
	}
	return nil
}

// args builds the systemd-nspawn command line.
func (m *Machine) args() []string {
	a := []string{
		"--boot",
		"--directory=" + m.root,
		"--machine=" + m.name,
		"--register=no",
		"--keep-unit",
		"--console=pipe",
		"--resolv-conf=copy-host",
		"--timezone=off",
		"--link-journal=no",
		"--quiet",
	}
	for _, b := range m.opts.Binds {
		target := b.Target
		if target == "" {
			target = b.Source
		}
		flag := "--bind="
		if b.ReadOnly {
			flag = "--bind-ro="
		}
		a = append(a, flag+b.Source+":"+target)
	}
	return a
}

// loop boots the machine again after every reboot until it powers off, is
// stopped, or fails.
func (m *Machine) loop() {
	var err error
	for boot := 1; ; boot++ {
		var code int
		code, err = m.bootOnce(boot)
		m.mu.Lock()
		stopping := m.stopping
		m.leader, m.nspawn = 0, nil
		m.notifyLocked()
		m.mu.Unlock()
		if stopping {
			// Whatever the boot was doing, Stop ended it on purpose.
			err = nil
			break
		}
		if err != nil {
			break
		}
		if code == exitReboot {
			m.logf("machine %s: rebooting (boot %d ended)", m.name, boot)
			continue
		}
		if code != 0 {
			err = fmt.Errorf("systemd-nspawn for %s exited with status %d", m.name, code)
		}
		break
	}
	m.mu.Lock()
	m.ended, m.err = true, err
	m.notifyLocked()
	m.mu.Unlock()
	close(m.done)
}

// bootOnce runs systemd-nspawn once: it waits for the container's init,
// then for systemd to finish starting up (which counts the boot), then for
// systemd-nspawn to exit, returning its exit status.
func (m *Machine) bootOnce(boot int) (int, error) {
	console, err := os.OpenFile(m.console, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", m.console, err)
	}
	defer console.Close()
	fmt.Fprintf(console, "=== stoker: boot %d of %s ===\n", boot, m.name)
	cmd := exec.Command("systemd-nspawn", m.args()...)
	cmd.Stdout, cmd.Stderr = console, console
	// Its own process group, so a terminal's Ctrl-C reaches it only through
	// Stop; and a clean shutdown if the test binary dies without Stop (a
	// go test timeout), instead of a container left running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return 0, nil
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return 0, fmt.Errorf("start systemd-nspawn for %s: %w", m.name, err)
	}
	m.nspawn = cmd.Process
	m.mu.Unlock()

	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	ctx, cancel := context.WithTimeout(context.Background(), m.opts.BootTimeout)
	defer cancel()
	up := m.waitUp(ctx, cmd.Process.Pid, exited)
	if up.err != nil {
		// Do not leave a half-booted container behind.
		m.kill(cmd.Process, up.leader)
		<-exited
		return 0, fmt.Errorf("boot %d: %w", boot, up.err)
	}
	m.mu.Lock()
	m.boots, m.leader = boot, up.leader
	m.notifyLocked()
	m.mu.Unlock()
	m.logf("machine %s: boot %d up (%s) in %s", m.name, boot, up.state, time.Since(start).Round(time.Millisecond))

	<-exited
	var exit *exec.ExitError
	switch {
	case waitErr == nil:
		return 0, nil
	case errors.As(waitErr, &exit) && exit.Exited():
		return exit.ExitCode(), nil
	default:
		return 0, fmt.Errorf("systemd-nspawn for %s: %w", m.name, waitErr)
	}
}

type upResult struct {
	leader int
	state  string
	err    error
}

// waitUp finds the container's init among systemd-nspawn's descendants and
// polls `systemctl is-system-running` inside until it settles.
func (m *Machine) waitUp(ctx context.Context, nspawnPID int, exited <-chan struct{}) upResult {
	var r upResult
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			r.err = fmt.Errorf("systemd-nspawn exited before systemd was up (state %q)", r.state)
			return r
		case <-ctx.Done():
			r.err = fmt.Errorf("wait for systemd (state %q): %w", r.state, ctx.Err())
			return r
		case <-tick.C:
		}
		if r.leader == 0 {
			r.leader = findLeader(nspawnPID)
			if r.leader == 0 {
				continue
			}
		}
		out, _ := nsenter(ctx, r.leader, "systemctl", "is-system-running").Output()
		r.state = strings.TrimSpace(string(out))
		switch r.state {
		case "running":
			return r
		case "degraded":
			failed, _ := nsenter(ctx, r.leader, "systemctl", "--failed", "--no-legend", "--plain").Output()
			m.logf("machine %s: degraded, failed units:\n%s", m.name, failed)
			return r
		}
	}
}

// findLeader returns the PID of the container's init (PID 1 in its own PID
// namespace) below systemd-nspawn's process, or 0 if it is not there yet.
func findLeader(nspawnPID int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	children := map[int][]int{}
	init := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var ppid int
		for _, line := range strings.Split(string(status), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			f := strings.Fields(v)
			switch k {
			case "PPid":
				if len(f) == 1 {
					ppid, _ = strconv.Atoi(f[0])
				}
			case "NSpid":
				init[pid] = len(f) >= 2 && f[len(f)-1] == "1"
			}
		}
		children[ppid] = append(children[ppid], pid)
	}
	// Breadth first from systemd-nspawn; the shallowest init is the leader.
	queue := []int{nspawnPID}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		kids := children[p]
		sort.Ints(kids)
		for _, c := range kids {
			if init[c] {
				return c
			}
			queue = append(queue, c)
		}
	}
	return 0
}

// nsenter builds a command that runs args inside the container whose init
// is leader, with a clean environment.
func nsenter(ctx context.Context, leader int, args ...string) *exec.Cmd {
	a := append([]string{"-t", strconv.Itoa(leader), "-a", "--", "/usr/bin/env", "-i", containerPath, "LANG=C.UTF-8"}, args...)
	return exec.CommandContext(ctx, "nsenter", a...)
}

// notifyLocked wakes everyone waiting for a state change. m.mu must be held.
func (m *Machine) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Name returns the machine's name, which is also its host name.
func (m *Machine) Name() string { return m.name }

// Root returns the host path of the machine's root directory. Files
// written under it appear inside the machine, also while it runs.
func (m *Machine) Root() string { return m.root }

// Path returns the host path of path inside the machine.
func (m *Machine) Path(path string) string { return filepath.Join(m.root, path) }

// Boots returns how many boots have reached a running systemd.
func (m *Machine) Boots() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boots
}

// Leader returns the host PID of the machine's init, or 0 between boots.
func (m *Machine) Leader() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}

// Done is closed when the machine has ended: powered off, stopped or
// failed. Err then says why.
func (m *Machine) Done() <-chan struct{} { return m.done }

// Err returns why the machine ended, or nil while it runs and after a
// poweroff or Stop.
func (m *Machine) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// WaitBoot waits until boot n has reached a running systemd and the machine
// is up. It fails when the machine ends first or ctx is done.
func (m *Machine) WaitBoot(ctx context.Context, n int) error {
	for {
		m.mu.Lock()
		boots, leader, ended, err, changed := m.boots, m.leader, m.ended, m.err, m.changed
		m.mu.Unlock()
		if boots >= n && leader != 0 {
			return nil
		}
		if ended {
			if err == nil {
				err = errors.New("powered off")
			}
			return fmt.Errorf("wait for boot %d of %s: ended after %d boots: %w", n, m.name, boots, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for boot %d of %s (at %d): %w", n, m.name, boots, ctx.Err())
		}
	}
}

// Command returns a command that runs args inside the running machine (all
// its namespaces, its root, a clean environment).
func (m *Machine) Command(ctx context.Context, args ...string) (*exec.Cmd, error) {
	leader := m.Leader()
	if leader == 0 {
		return nil, fmt.Errorf("run %q in %s: %w", args, m.name, ErrNotRunning)
	}
	return nsenter(ctx, leader, args...), nil
}

// Run runs args inside the machine and returns their combined output.
func (m *Machine) Run(ctx context.Context, args ...string) (string, error) {
	cmd, err := m.Command(ctx, args...)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("run %q in %s: %w: %s", args, m.name, err, bytes.TrimSpace(out.Bytes()))
	}
	return out.String(), nil
}

// WriteFile writes data to path inside the machine (from the host, so it
// works between boots too), creating parent directories.
func (m *Machine) WriteFile(path string, data []byte, perm os.FileMode) error {
	p := m.Path(path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create parent of %s in %s: %w", path, m.name, err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		return fmt.Errorf("write %s in %s: %w", path, m.name, err)
	}
	return nil
}

// Journal returns the journal of unit in the current boot (all of it when
// unit is empty), for failure messages. Errors end up in the text.
func (m *Machine) Journal(ctx context.Context, unit string) string {
	args := []string{"journalctl", "--no-pager", "-o", "short-precise", "-b"}
	if unit != "" {
		args = append(args, "-u", unit)
	}
	out, err := m.Run(ctx, args...)
	if err != nil {
		return out + "\n(" + err.Error() + ")"
	}
	return out
}

// BootID returns the machine's current boot ID, which systemd-nspawn makes
// fresh for every boot.
func (m *Machine) BootID(ctx context.Context) (string, error) {
	out, err := m.Run(ctx, "cat", "/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(out), err
}

// ConsoleTail returns the last n lines of the machine's console (systemd's
// boot messages and systemd-nspawn's own), for failure messages.
func (m *Machine) ConsoleTail(n int) string {
	data, err := os.ReadFile(m.console)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", m.console, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop powers the machine off (systemd-nspawn turns SIGTERM into a clean
// shutdown of the container), killing it after StopTimeout, and waits
// until it has ended. Stopping an ended machine does nothing.
func (m *Machine) Stop() error {
	start := time.Now()
	m.mu.Lock()
	m.stopping = true
	proc, leader := m.nspawn, m.leader
	m.mu.Unlock()
	defer func() { m.logf("machine %s: stopped in %s", m.name, time.Since(start).Round(time.Millisecond)) }()
	if proc != nil {
		_ = proc.Signal(syscall.SIGTERM)
	}
	select {
	case <-m.done:
	case <-time.After(m.opts.StopTimeout):
		m.mu.Lock()
		proc, leader = m.nspawn, m.leader
		m.mu.Unlock()
		m.logf("machine %s: no clean shutdown within %s, killing it", m.name, m.opts.StopTimeout)
		m.kill(proc, leader)
		<-m.done
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// kill ends a container at once: killing its init takes its whole PID
// namespace down, then systemd-nspawn itself.
func (m *Machine) kill(proc *os.Process, leader int) {
	if leader != 0 {
		_ = syscall.Kill(leader, syscall.SIGKILL)
	}
	if proc != nil {
		_ = proc.Kill()
	}
}
