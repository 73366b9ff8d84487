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
	"github.com/godbus/dbus/v5"

	"stoker.dev/stoker/api"
)

// Systemd is every systemd operation the applier and the agent need.
// NewSystemd picks the implementation: D-Bus to the host's systemd on a
// live host, `systemctl --root` on an offline directory tree.
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

// NewSystemd returns the offline `systemctl --root` implementation for an
// offline host and otherwise the D-Bus one, connected to the systemd of
// the host at h.Root (see NewHostSystemd); it fails when that systemd
// cannot be reached, never falling back to offline.
func NewSystemd(ctx context.Context, h Host) (Systemd, error) {
	if h.Offline {
		return &RootSystemd{Root: h.Root}, nil
	}
	return NewHostSystemd(ctx, h.Root)
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

// checkUnits refuses any name that is not a systemd unit name (see
// api.ValidUnitName), before it reaches systemctl or D-Bus.
func checkUnits(op string, units ...string) error {
	for _, u := range units {
		if err := api.ValidUnitName(u); err != nil {
			return fmt.Errorf("%s %q: %w", op, u, err)
		}
	}
	return nil
}

// unitArgs is verb, then "--", then the units: nothing after "--" is read
// as an option, whatever a unit name holds.
func unitArgs(verb string, units ...string) []string {
	return append([]string{verb, "--"}, units...)
}

func (s *RootSystemd) systemctl(ctx context.Context, verb string, units ...string) (string, error) {
	if err := checkUnits(verb, units...); err != nil {
		return "", err
	}
	full := append([]string{"--root=" + s.Root, "--no-reload"}, unitArgs(verb, units...)...)
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
	_, err := s.systemctl(ctx, "enable", units...)
	return err
}

// Disable implements Systemd.
func (s *RootSystemd) Disable(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, "disable", units...)
	return err
}

// Mask implements Systemd.
func (s *RootSystemd) Mask(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, "mask", units...)
	return err
}

// Unmask implements Systemd.
func (s *RootSystemd) Unmask(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, "unmask", units...)
	return err
}

// Preset implements Systemd.
func (s *RootSystemd) Preset(ctx context.Context, units ...string) error {
	_, err := s.systemctl(ctx, "preset", units...)
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
	if err := checkUnits("is-enabled", unit); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, SystemctlBin, append([]string{"--root=" + root}, unitArgs("is-enabled", unit)...)...)
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

// DBusSystemd talks to a running systemd over D-Bus: the host's own, also
// from a container (see NewHostSystemd).
type DBusSystemd struct {
	conn *sddbus.Conn
	// raw carries the manager calls go-systemd does not wrap.
	raw *dbus.Conn
	// Socket is the host path of the socket connected to; Version is
	// the manager's version.
	Socket  string
	Version string
}

// NewDBusSystemd connects to the systemd of this host (root "/").
func NewDBusSystemd(ctx context.Context) (*DBusSystemd, error) {
	return NewHostSystemd(ctx, "/")
}

// Close closes the D-Bus connections.
func (s *DBusSystemd) Close() {
	s.conn.Close()
	s.raw.Close()
}

func (s *DBusSystemd) manager() dbus.BusObject { return s.raw.Object(systemdService, systemdPath) }

// Enable implements Systemd.
func (s *DBusSystemd) Enable(ctx context.Context, units ...string) error {
	if err := checkUnits("enable", units...); err != nil {
		return err
	}
	if _, _, err := s.conn.EnableUnitFilesContext(ctx, units, false, true); err != nil {
		return fmt.Errorf("enable %s: %w", strings.Join(units, " "), err)
	}
	return nil
}

// Disable implements Systemd.
func (s *DBusSystemd) Disable(ctx context.Context, units ...string) error {
	if err := checkUnits("disable", units...); err != nil {
		return err
	}
	if _, err := s.conn.DisableUnitFilesContext(ctx, units, false); err != nil {
		return fmt.Errorf("disable %s: %w", strings.Join(units, " "), err)
	}
	return nil
}

// Mask implements Systemd.
func (s *DBusSystemd) Mask(ctx context.Context, units ...string) error {
	if err := checkUnits("mask", units...); err != nil {
		return err
	}
	if _, err := s.conn.MaskUnitFilesContext(ctx, units, false, true); err != nil {
		return fmt.Errorf("mask %s: %w", strings.Join(units, " "), err)
	}
	return nil
}

// Unmask implements Systemd.
func (s *DBusSystemd) Unmask(ctx context.Context, units ...string) error {
	if err := checkUnits("unmask", units...); err != nil {
		return err
	}
	if _, err := s.conn.UnmaskUnitFilesContext(ctx, units, false); err != nil {
		return fmt.Errorf("unmask %s: %w", strings.Join(units, " "), err)
	}
	return nil
}

// Preset implements Systemd with the manager's PresetUnitFiles, which
// go-systemd does not wrap.
func (s *DBusSystemd) Preset(ctx context.Context, units ...string) error {
	if err := checkUnits("preset", units...); err != nil {
		return err
	}
	call := s.manager().CallWithContext(ctx, systemdManager+".PresetUnitFiles", 0, units, false, true)
	if call.Err != nil {
		return fmt.Errorf("preset %s: %w", strings.Join(units, " "), call.Err)
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
	if err := checkUnits(what, unit); err != nil {
		return err
	}
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

// UnitFileState implements Systemd with the manager's GetUnitFileState;
// a unit systemd has no file for is "not-found", as systemctl says.
func (s *DBusSystemd) UnitFileState(ctx context.Context, unit string) (string, error) {
	if err := checkUnits("unit file state of", unit); err != nil {
		return "", err
	}
	var state string
	err := s.manager().CallWithContext(ctx, systemdManager+".GetUnitFileState", 0, unit).Store(&state)
	var derr dbus.Error
	if errors.As(err, &derr) && (derr.Name == "org.freedesktop.systemd1.NoSuchUnit" || derr.Name == "org.freedesktop.DBus.Error.FileNotFound") {
		return "not-found", nil
	}
	if err != nil {
		return "", fmt.Errorf("unit file state of %s: %w", unit, err)
	}
	return state, nil
}
