package nodeops

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

var (
	_ Rebooter = (*LogindRebooter)(nil)
	_ Rebooter = (*ExecRebooter)(nil)
	_ Rebooter = (*SimulateRebooter)(nil)
)

// NewRebooter returns the rebooter named by spec: "systemd" (the logind of
// this host), "exec:CMD" or "simulate" (which needs stateDir).
func NewRebooter(spec, stateDir string) (Rebooter, error) {
	return NewHostRebooter(spec, stateDir, Host{Root: "/"})
}

// NewHostRebooter is NewRebooter for host h: "systemd" asks the logind of
// the host at h.Root over the host's system bus.
func NewHostRebooter(spec, stateDir string, h Host) (Rebooter, error) {
	switch {
	case spec == "systemd":
		return &LogindRebooter{Root: h.Root}, nil
	case spec == "simulate":
		if stateDir == "" {
			return nil, errors.New("rebooter simulate: state dir is required")
		}
		return &SimulateRebooter{StateDir: stateDir}, nil
	case strings.HasPrefix(spec, "exec:"):
		cmd := strings.TrimPrefix(spec, "exec:")
		if strings.TrimSpace(cmd) == "" {
			return nil, errors.New("rebooter exec: command is empty")
		}
		return &ExecRebooter{Command: cmd}, nil
	}
	return nil, fmt.Errorf("rebooter %q: unknown (want systemd, exec:CMD or simulate)", spec)
}

// LogindRebooter asks systemd-logind over D-Bus to reboot, as kured does:
// the logind of the host at Root ("" or "/": this host), over the system
// bus socket below Root.
type LogindRebooter struct {
	Root string
}

// Reboot implements Rebooter; logind's refusal is returned.
func (r LogindRebooter) Reboot(ctx context.Context, _ string) error {
	return rebootThroughLogind(ctx, r.Root)
}

// ExecRebooter runs Command with sh -c; REBOOT_REASON holds the reason.
type ExecRebooter struct {
	Command string
}

// Reboot implements Rebooter.
func (r *ExecRebooter) Reboot(ctx context.Context, reason string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", r.Command)
	cmd.Env = append(os.Environ(), "REBOOT_REASON="+reason)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("reboot with %q: %w: %s", r.Command, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// SimulateRebooter behaves as if the machine rebooted: it writes a new
// boot id to the state dir (BootID then returns it) and replaces the
// current process with a fresh copy of itself, same arguments and
// environment. The caller must have persisted its state first.
type SimulateRebooter struct {
	StateDir string
	// Exec replaces the process; nil means syscall.Exec of /proc/self/exe.
	// Tests inject a recorder.
	Exec func(argv0 string, argv, envv []string) error
}

// Reboot implements Rebooter. On success with the real Exec it does not
// return.
func (r *SimulateRebooter) Reboot(_ context.Context, _ string) error {
	id, err := newBootID()
	if err != nil {
		return fmt.Errorf("simulate reboot: %w", err)
	}
	if err := WriteFile(SimulatedBootIDPath(r.StateDir), []byte(id+"\n"), FileOptions{Mode: 0o644, UID: -1, GID: -1, DirMode: 0o700}); err != nil {
		return fmt.Errorf("simulate reboot: record boot id: %w", err)
	}
	execFn := r.Exec
	if execFn == nil {
		execFn = syscall.Exec
	}
	if err := execFn("/proc/self/exe", os.Args, os.Environ()); err != nil {
		return fmt.Errorf("simulate reboot: re-exec %s: %w", os.Args[0], err)
	}
	return nil
}

func newBootID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new boot id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// BootID identifies the current boot: the simulated boot id in stateDir
// if a simulated reboot wrote one, else the kernel's boot id under root.
// The agent records it at apply time and compares after a restart to
// tell a reboot from a mere restart.
func BootID(root, stateDir string) (string, error) {
	if stateDir != "" {
		data, err := os.ReadFile(SimulatedBootIDPath(stateDir))
		if err == nil {
			return strings.TrimSpace(string(data)), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("read simulated boot id: %w", err)
		}
	}
	p := KernelBootIDFile
	if root != "/" && root != "" {
		// A directory root has no kernel of its own; the host's boot id is
		// the truth unless the tree provides one.
		if rp, err := Resolve(root, KernelBootIDFile); err == nil {
			if _, err := os.Stat(rp); err == nil {
				p = rp
			}
		}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
