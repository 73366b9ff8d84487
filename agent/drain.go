package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// DefaultDrainDeadline is MCO's DrainTimeoutDuration (DefaultConfig in
// pkg/controller/drain/drain_controller.go): past it, Controller.drainNode
// reports "drain exceeded timeout ... Will continue to retry" and goes on
// retrying. MCO keeps the drain's start in memory (ongoingDrains); Stoker
// keeps it in the agent's state, so a restart does not reset it.
const DefaultDrainDeadline = time.Hour

// drain makes one drain attempt for the planned update st. Every failure
// is retried at the next pass (a PodDisruptionBudget that allows no
// eviction now, an API error, a pod that does not go): the node stays in
// StagePlanned, so nothing is written and nothing reboots. It is reported
// Working with what blocks, and Degraded (still retrying) once the drain
// has failed for DrainDeadline since its first attempt; that start is
// saved before the first attempt, so a restart does not reset it.
func (a *agent) drain(ctx context.Context, st State) error {
	if st.DrainStarted.IsZero() {
		st.DrainStarted = a.o.Now().UTC()
		if err := a.save(st); err != nil {
			return err
		}
	}
	a.crash("drain-before")
	a.log.WithField("action", "drain").Info("draining node")
	cordoned, err := a.o.Drainer.Drain(ctx, a.o.Node)
	if cordoned && !st.Cordoned {
		// Saved at once, also when the drain did not finish: an update
		// abandoned from here still undoes the cordon.
		st.Cordoned = true
		if serr := a.save(st); serr != nil {
			return errors.Join(err, serr)
		}
	}
	if err == nil {
		a.crash("drain-after")
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	since := a.o.Now().Sub(st.DrainStarted)
	if since >= a.o.DrainDeadline {
		reason := fmt.Sprintf("drain of %s not finished after %s (deadline %s), still retrying: %v",
			a.o.Node, since.Round(time.Second), a.o.DrainDeadline, err)
		a.report(api.StateDegraded, reason)
		return fmt.Errorf("drain: %w", err)
	}
	reason := "draining before " + st.Pending + ": " + err.Error()
	if !errors.Is(err, nodeops.ErrDrainBlocked) {
		reason = "draining before " + st.Pending + " (will retry): " + err.Error()
	}
	a.report(api.StateWorking, reason)
	return fmt.Errorf("drain: %w", err)
}

// cordonedBy says whether the update st being abandoned left a cordon of
// ours: the saved flag, or, when a drain was started, the drainer's own
// record of it.
func (a *agent) cordonedBy(ctx context.Context, st State) bool {
	if st.Cordoned || st.DrainStarted.IsZero() {
		return st.Cordoned
	}
	if cc, ok := a.o.Drainer.(nodeops.CordonChecker); ok {
		mine, err := cc.CordonedByUs(ctx, a.o.Node)
		if err != nil {
			a.log.WithError(err).Warn("could not tell whether the abandoned drain cordoned the node; uncordoning to be safe")
			return true
		}
		return mine
	}
	return false
}
