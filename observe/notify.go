package observe

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// NotifySystemd tells systemd the daemon is ready (Type=notify) and, when
// the unit sets WatchdogSec, pings the watchdog at half its interval for
// as long as healthy returns nil (nil healthy: always), so a wedged loop
// is restarted by systemd. Outside systemd ($NOTIFY_SOCKET unset) it does
// nothing. It returns at once; the pings stop when ctx ends.
func NotifySystemd(ctx context.Context, healthy func() error) {
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); !ok || err != nil {
		return
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
				return
			case <-t.C:
				if healthy == nil || healthy() == nil {
					_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
				}
			}
		}
	}()
}

// Check returns nil while h is healthy, else why not (for NotifySystemd).
func (h *Health) Check() error { return h.check() }
