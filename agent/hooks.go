package agent

import (
	"context"
	"errors"
	"strings"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// Node lifecycle hooks (a Stoker addition; MCO has none). The hooks of
// each point run at one place of the update state machine, before the
// stage that follows is saved, so a crash before that save runs them
// again (hooks must be idempotent):
//
//   - before-drain: in planned, before a disruptive update's drain (once:
//     not again when a blocked drain is retried). It fails the update
//     with nothing drained or written.
//   - before-apply: in drained, before anything is written. It fails the
//     update with nothing written; a drain is undone (uncordon).
//   - before-reboot: in applied, before the reboot of a Reboot update.
//     The applied config is rolled back (the journal's originals are
//     put back); no reboot happens.
//   - after-reboot: in rebooting, once the new boot is seen and the node
//     validated: the health gate. Until it passes the update is not
//     committed (the pending gate survives a crash: the stage says it is
//     due). Failing it rolls back to the last good config with
//     --auto-rollback — the journal's originals put back, then one more
//     reboot so that config is live again (State.RebootBack) — else the
//     node stays on the new config, Degraded, and the gate runs again on
//     the next pass.
//
// A failure is saved in State.Hook and reported (Report.Hook) with the
// hook's output, until the node converges or a new update starts.

// hook runs point's hooks for st's update. A hook that fails is returned
// (a *nodeops.HookError) and recorded in st.Hook; the caller saves st.
// When ctx ends the hook is killed and ctx's error returned instead: a
// stopped agent is no failed hook.
func (a *agent) hook(ctx context.Context, point string, st *State) error {
	log := a.log.WithFields(logrus.Fields{"rendered": st.Pending, "action": point})
	ran, err := a.hooks.Run(ctx, point,
		"STOKER_NODE="+a.o.Node, "STOKER_CURRENT_CONFIG="+st.Current, "STOKER_DESIRED_CONFIG="+st.Pending)
	if len(ran) > 0 || err != nil {
		log = log.WithField("path", strings.Join(ran, " "))
	}
	if err == nil {
		if len(ran) > 0 {
			log.Info("hooks passed")
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res := &api.HookResult{Point: point, Config: st.Pending, Error: err.Error(), Time: a.o.Now().UTC()}
	var he *nodeops.HookError
	if errors.As(err, &he) {
		res.Hook, res.Output = he.Hook, he.Output
		res.Error = he.Err.Error()
	}
	st.Hook = res
	log.WithError(err).Warn("hook failed")
	return err
}

// hookOnce is hook when due, else nothing.
func (a *agent) hookOnce(ctx context.Context, point string, st *State, due bool) error {
	if !due {
		return nil
	}
	return a.hook(ctx, point, st)
}

// stopped reports whether err is ctx ending (the agent is stopping).
func stopped(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// sameHook compares two hook failures, their time aside.
func sameHook(x, y *api.HookResult) bool {
	if x == nil || y == nil {
		return x == y
	}
	a, b := *x, *y
	a.Time, b.Time = b.Time, a.Time
	return a == b
}
