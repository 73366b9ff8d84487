package nodeops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Host says which machine nodeops changes and how it reaches it.
//
// On the host itself Root is "/". In a container (the agent's DaemonSet)
// Root is where the host's root is mounted (/host): files are written
// below it, systemd is driven through the host's own sockets below it
// (<root>/run/systemd/private, else <root>/run/dbus/system_bus_socket),
// the reboot goes through the host's logind on the host's system bus, and
// helper tools (rpm-ostree, bootc, grubby) run chrooted into Root, as
// MCO's daemon chroots into /rootfs. Nothing is taken from the agent's
// image.
//
// Offline is for a directory tree without a running systemd (an image
// being built, a simulated fleet): units are enabled with
// `systemctl --root`, restarts and reloads are only recorded, and helper
// tools come from the agent's PATH. It is never chosen silently: the
// agent asks for it with --offline or --reboot simulate.
type Host struct {
	Root    string
	Offline bool
}

// live reports whether h is a running host reached through a root other
// than "/".
func (h Host) chrooted() bool { return !h.Offline && h.Root != "" && h.Root != "/" }

// dialFunc opens one fully set-up D-Bus connection.
type dialFunc func() (*dbus.Conn, error)

// dialPrivate connects to systemd's private socket at path: a direct
// connection to PID 1 (no bus daemon, so no Hello), root only.
func dialPrivate(ctx context.Context, path string) dialFunc {
	return func() (*dbus.Conn, error) {
		return dialSocket(ctx, path, false)
	}
}

// dialSystemBus connects to the system bus daemon listening at path.
func dialSystemBus(ctx context.Context, path string) dialFunc {
	return func() (*dbus.Conn, error) {
		return dialSocket(ctx, path, true)
	}
}

func dialSocket(ctx context.Context, path string, hello bool) (*dbus.Conn, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	conn, err := dbus.Dial("unix:path="+path, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	// EXTERNAL with the numeric uid: no user name lookup (static binary).
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate on %s: %w", path, err)
	}
	if hello {
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("hello on %s: %w", path, err)
		}
	}
	return conn, nil
}

// hostSocket returns the host path of socket p below root.
func hostSocket(root, p string) (string, error) {
	if root == "" {
		root = "/"
	}
	if root == "/" {
		return p, nil
	}
	return Resolve(root, p)
}

// NewHostSystemd connects to the systemd of the host at root: its private
// socket first (it works before the bus daemon runs), then its system bus.
// The error names every socket tried, so a DaemonSet missing the host's
// /run mount says what is missing.
func NewHostSystemd(ctx context.Context, root string) (*DBusSystemd, error) {
	var errs []error
	for _, s := range []struct {
		path string
		dial func(context.Context, string) dialFunc
	}{
		{SystemdPrivateSocket, dialPrivate},
		{SystemBusSocket, dialSystemBus},
	} {
		p, err := hostSocket(root, s.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dial := s.dial(ctx, p)
		probe, err := dial()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// A bus without systemd on it (or a private socket of a dead
		// manager) is not a host: ask for the manager's version first.
		v, err := probe.Object(systemdService, systemdPath).GetProperty(systemdManager + ".Version")
		if err != nil {
			probe.Close()
			errs = append(errs, fmt.Errorf("ask systemd on %s: %w", p, err))
			continue
		}
		conn, err := sddbus.NewConnection(dial)
		if err != nil {
			probe.Close()
			errs = append(errs, fmt.Errorf("connect to systemd on %s: %w", p, err))
			continue
		}
		return &DBusSystemd{conn: conn, raw: probe, Socket: p, Version: strings.Trim(v.String(), `"`)}, nil
	}
	return nil, fmt.Errorf("connect to the host's systemd under %s: %w", root, errors.Join(errs...))
}

// D-Bus names of systemd and logind.
const (
	systemdService = "org.freedesktop.systemd1"
	systemdPath    = dbus.ObjectPath("/org/freedesktop/systemd1")
	systemdManager = "org.freedesktop.systemd1.Manager"
	logindService  = "org.freedesktop.login1"
	logindPath     = dbus.ObjectPath("/org/freedesktop/login1")
	logindManager  = "org.freedesktop.login1.Manager"
)

// rebootThroughLogind asks the logind of the host at root to reboot, over
// the host's system bus. logind honours inhibitors and runs the host's
// shutdown as `systemctl reboot` would.
func rebootThroughLogind(ctx context.Context, root string) error {
	p, err := hostSocket(root, SystemBusSocket)
	if err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	conn, err := dialSocket(ctx, p, true)
	if err != nil {
		return fmt.Errorf("reboot: connect to logind: %w", err)
	}
	defer conn.Close()
	call := conn.Object(logindService, logindPath).CallWithContext(ctx, logindManager+".Reboot", 0, false)
	if call.Err != nil {
		return fmt.Errorf("reboot: logind on %s: %w", p, call.Err)
	}
	return nil
}
