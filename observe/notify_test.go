package observe

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNotifySystemd: READY=1 then WATCHDOG=1 pings on $NOTIFY_SOCKET while
// healthy, none while not (systemd then restarts the unit).
func TestNotifySystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "40000") // 40ms: pings every 20ms
	t.Setenv("WATCHDOG_PID", "")
	healthy := make(chan bool, 1)
	healthy <- true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	state := true
	NotifySystemd(ctx, func() error {
		select {
		case state = <-healthy:
		default:
		}
		if !state {
			return errors.New("wedged")
		}
		return nil
	})
	read := func() string {
		buf := make([]byte, 256)
		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first message %q", got)
	}
	if got := read(); !strings.Contains(got, "WATCHDOG=1") {
		t.Fatalf("second message %q", got)
	}
	healthy <- false
	// After the health turns, pings stop: the next message, if any, comes
	// only when ctx ends (STOPPING=1). Drain pings sent before the turn.
	cancel()
	for {
		if got := read(); got == "STOPPING=1" {
			break
		} else if got != "WATCHDOG=1" {
			t.Fatalf("unexpected %q", got)
		}
	}
}
