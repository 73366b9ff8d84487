package nodeops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// Systemd is every systemd operation the applier and the agent need.
// NewSystemd picks the implementation: D-Bus on a live host (root "/"),
// `systemctl --root` on a directory tree otherwise.
type Systemd interface {
	Enable(ctx context.Context, units ...string) error
	Disable(ctx context.Context, units ...string) error
	Mask(ctx context.Context, units ...string) error
	Unmask(ctx context.Context, units ...string) error
	// Preset applies the distribution's preset policy to units.
	Preset(ctx context.Context, units ...string) error
	DaemonReload(ctx context.Context) error
	Restart(ctx context.Context, unit string) error
	Reload(ctx context.Context, unit string) error
	// UnitFileState returns what `systemctl is-enabled` prints: enabled,
	// disabled, masked, static, not-found, ...
	UnitFileState(ctx context.Context, unit string) (string, error)
}

var (
	_ Systemd = (*DBusSystemd)(nil)
	_ Systemd = (*RootSystemd)(nil)
)

// NewSystemd returns the D-Bus implementation for root "/" and the offline
// `systemctl --root` one for any other root.
func NewSystemd(ctx context.Context, root string) (Systemd, error) {
	if root == "/" || root == "" {
		return NewDBusSystemd(ctx)
	}
	return &RootSystemd{Root: root}, nil
}

// RootSystemd manages enablement in a directory tree with
// `systemctl --root=DIR`, which edits the symlinks under
// DIR/etc/systemd/system without a running systemd. DaemonReload, Restart
// and Reload have nothing to act on there: they are recorded in Log.
type RootSystemd struct {
	Root string

	mu  sync.Mutex
	log []string
}

func (s *RootSystemd) systemctl(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--root=" + s.Root, "--no-reload"}, args...)
	cmd := exec.CommandContext(ctx, SystemctlBin, full...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", SystemctlBin, strings.Join(full, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

func (s *RootSystemd) record(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, op)
}

// Log returns the live-system operations that were recorded instead of run.
func (s *RootSystemd) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// Enable implements Systemd.
func (s *RootSystemd) Enable(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, append([]string{"enable"}, units...)...)
	return err
}

// Disable implements Systemd.
func (s *RootSystemd) Disable(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, append([]string{"disable"}, units...)...)
	return err
}

// Mask implements Systemd.
func (s *RootSystemd) Mask(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, append([]string{"mask"}, units...)...)
	return err
}

// Unmask implements Systemd.
func (s *RootSystemd) Unmask(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, append([]string{"unmask"}, units...)...)
	return err
}

// Preset implements Systemd.
func (s *RootSystemd) Preset(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, append([]string{"preset"}, units...)...)
	return err
}

// DaemonReload implements Systemd; it is recorded only.
func (s *RootSystemd) DaemonReload(context.Context) error {
	s.record("daemon-reload")
	return nil
}

// Restart implements Systemd; it is recorded only.
func (s *RootSystemd) Restart(_ context.Context, unit string) error {
	s.record("restart " + unit)
	return nil
}

// Reload implements Systemd; it is recorded only.
func (s *RootSystemd) Reload(_ context.Context, unit string) error {
	s.record("reload " + unit)
	return nil
}

// UnitFileState implements Systemd.
func (s *RootSystemd) UnitFileState(ctx context.Context, unit string) (string, error) {
	return unitFileState(ctx, s.Root, unit)
}

// unitFileState runs `systemctl --root is-enabled`, which prints the
// state and exits non-zero for anything but enabled; an empty answer is
// an error, "not-found" is reported as such.
func unitFileState(ctx context.Context, root, unit string) (string, error) {
	cmd := exec.CommandContext(ctx, SystemctlBin, "--root="+root, "is-enabled", unit)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	state := strings.TrimSpace(out.String())
	if state != "" {
		return strings.Fields(state)[0], nil
	}
	if strings.Contains(stderr.String(), "No such file") {
		return "not-found", nil
	}
	if err == nil {
		err = errors.New("no output")
	}
	return "", fmt.Errorf("%s is-enabled %s under %s: %w: %s", SystemctlBin, unit, root, err, strings.TrimSpace(stderr.String()))
}

// DBusSystemd talks to the running systemd over D-Bus.
type DBusSystemd struct {
	conn *sddbus.Conn
}

// NewDBusSystemd connects to the system systemd.
func NewDBusSystemd(ctx context.Context) (*DBusSystemd, error) {
	conn, err := sddbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return &DBusSystemd{conn: conn}, nil
}

// Close closes the D-Bus connection.
func (s *DBusSystemd) Close() { s.conn.Close() }

// Enable implements Systemd.
func (s *DBusSystemd) Enable(ctx context.Context, units ...string) error {
	if _, _, err := s.conn.EnableUnitFilesContext(ctx, units, false, true); err != nil {
		return fmt.Errorf("enable %s: %w", strings.Join(units, " "), err)
	}
	return nil
}

// Disable implements Systemd.
func (s *DBusSystemd) Disable(ctx context.Context, units ...string) error {
	if _, err := s.conn.DisableUnitFilesContext(ctx, units, false); err != nil {
		return fmt.Errorf("disable %s: %w", strings.Join(units, " "), err)
	}
	return nil
}

// Mask implements Systemd.
func (s *DBusSystemd) Mask(ctx context.Context, units ...string) error {
	if _, err := s.conn.MaskUnitFilesContext(ctx, units, false, true); err != nil {
		return fmt.Errorf("mask %s: %w", strings.Join(units, " "), err)
	}
	return nil
}

// Unmask implements Systemd.
func (s *DBusSystemd) Unmask(ctx context.Context, units ...string) error {
	if _, err := s.conn.UnmaskUnitFilesContext(ctx, units, false); err != nil {
		return fmt.Errorf("unmask %s: %w", strings.Join(units, " "), err)
	}
	return nil
}

// Preset implements Systemd. go-systemd has no PresetUnitFiles call, so
// this runs `systemctl preset`, which itself goes through D-Bus.
func (s *DBusSystemd) Preset(ctx context.Context, units ...string) error {
	cmd := exec.CommandContext(ctx, SystemctlBin, append([]string{"preset"}, units...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("preset %s: %w: %s", strings.Join(units, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DaemonReload implements Systemd.
func (s *DBusSystemd) DaemonReload(ctx context.Context) error {
	if err := s.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// Restart implements Systemd; it waits for the job to finish.
func (s *DBusSystemd) Restart(ctx context.Context, unit string) error {
	return s.job(ctx, "restart", unit, s.conn.RestartUnitContext)
}

// Reload implements Systemd; it waits for the job to finish.
func (s *DBusSystemd) Reload(ctx context.Context, unit string) error {
	return s.job(ctx, "reload", unit, s.conn.ReloadUnitContext)
}

func (s *DBusSystemd) job(ctx context.Context, what, unit string,
	start func(context.Context, string, string, chan<- string) (int, error)) error {
	done := make(chan string, 1)
	if _, err := start(ctx, unit, "replace", done); err != nil {
		return fmt.Errorf("%s %s: %w", what, unit, err)
	}
	select {
	case res := <-done:
		if res != "done" {
			return fmt.Errorf("%s %s: job %s", what, unit, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", what, unit, ctx.Err())
	}
}

// UnitFileState implements Systemd.
func (s *DBusSystemd) UnitFileState(ctx context.Context, unit string) (string, error) {
	return unitFileState(ctx, "/", unit)
}
