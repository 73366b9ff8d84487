package agent

import (
	"context"
	"fmt"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// bootFailed handles a failed check after the reboot into the pending
// config (validation, the after-reboot health gate): with AutoRollback
// (or when the config is no longer wanted) the update is rolled back;
// otherwise the node stays on it, Degraded, and the check runs again on
// the next pass.
func (a *agent) bootFailed(ctx context.Context, st State, reason string) (bool, error) {
	if a.o.AutoRollback || a.abandoned() {
		return a.failed(ctx, a.rollback(st, reason))
	}
	a.log.WithField("rendered", st.Pending).Warn(reason)
	if st.Reason != reason || !sameHook(st.Hook, a.st.Hook) {
		st.Reason = reason
		if err := a.save(st); err != nil {
			return false, err
		}
	}
	a.report(api.StateDegraded, reason)
	return false, fmt.Errorf("%w: %s", ErrDegraded, reason) // --once exits 1, as for a failed update
}

// rebootBackNeeded: a Reboot update rolled back after the reboot into it
// left the node running a boot of the abandoned config, with the last
// good config's files back on disk; it reboots once more so that config
// is live again (its kernel arguments, the services started from its
// files). The boot id now is returned, the one to leave; "" when no
// reboot is needed (the rollback happened in the boot it was applied in).
func (a *agent) rebootBackNeeded(st State) (string, error) {
	if st.Plan == nil || st.Plan.Action != api.ActionReboot || st.BootID == "" {
		return "", nil
	}
	boot, err := nodeops.BootID(a.o.Root, a.o.StateDir)
	if err != nil {
		return "", err
	}
	if boot == st.BootID {
		return "", nil
	}
	return boot, nil
}

// rebootBack requests the reboot rebootBackNeeded asked for, until a new
// boot is seen; then it clears the request. again says a reboot was
// requested (the pass ends there).
func (a *agent) rebootBack(ctx context.Context) (again bool, err error) {
	boot, err := nodeops.BootID(a.o.Root, a.o.StateDir)
	if err != nil {
		return false, err
	}
	if boot != a.st.RebootBack {
		st := a.st
		st.RebootBack = ""
		return false, a.save(st)
	}
	a.report(api.StateDegraded, a.st.Reason)
	fctx, cancel := context.WithTimeout(ctx, rebootFlushTimeout)
	if err := a.reporter.Flush(fctx); err != nil {
		a.log.WithError(err).Warn("report before reboot not pushed")
	}
	cancel()
	a.log.WithField("rendered", a.st.Current).Info("rebooting into the last good config after the rollback")
	if err := a.o.Rebooter.Reboot(ctx, "stoker: roll back to "+orNone(a.st.Current)); err != nil {
		return true, err
	}
	a.rebooted = true
	return true, nil
}
