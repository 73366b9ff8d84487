package nodeops

import (
	"context"
	"fmt"

	"stoker.dev/stoker/api"
)

// RunActions performs the live, non-reboot actions of an applied plan:
// a daemon-reload when units changed or the plan asks for one, then the
// Reload and Restart actions' services (reloads first). The agent calls
// it after Apply when plan.Action is weaker than Reboot; with Reboot the
// reboot does all of it.
func RunActions(ctx context.Context, sd Systemd, plan api.Plan) error {
	if plan.UnitsChanged() || plan.Needs(api.ActionDaemonReload) {
		if err := sd.DaemonReload(ctx); err != nil {
			return fmt.Errorf("run plan actions for %s: %w", plan.To, err)
		}
	}
	for _, s := range plan.Services(api.ActionReload) {
		if err := sd.Reload(ctx, s); err != nil {
			return fmt.Errorf("run plan actions for %s: reload %s: %w", plan.To, s, err)
		}
	}
	for _, s := range plan.Services(api.ActionRestart) {
		if err := sd.Restart(ctx, s); err != nil {
			return fmt.Errorf("run plan actions for %s: restart %s: %w", plan.To, s, err)
		}
	}
	return nil
}
