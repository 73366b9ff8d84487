package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/nodeops"
)

// advance moves the update state machine until it is idle or must wait
// (a blocked drain, a requested reboot, a failing validation). Every
// transition is persisted before the effect it announces.
func (a *agent) advance(ctx context.Context) (idle bool, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		st := a.st
		log := a.log.WithFields(logrus.Fields{"rendered": st.Pending, "stage": st.Stage})
		switch st.Stage {
		case StageIdle:
			return a.idle(ctx)

		case StagePlanned:
			if a.abandoned() {
				log.Info("desired config changed before anything was written; re-planning")
				if err := a.save(State{Current: st.Current, Cordoned: a.cordonedBy(ctx, st)}); err != nil {
					return false, err
				}
				continue
			}
			if st.Plan != nil && st.Plan.Disruptive() {
				// Once per update: not again on each retry of a blocked drain.
				if err := a.hookOnce(ctx, nodeops.HookBeforeDrain, &st, st.DrainStarted.IsZero()); err != nil {
					if stopped(ctx, err) {
						return false, err
					}
					return a.failed(ctx, a.fail(st, err)) // nothing drained or written
				}
				if err := a.drain(ctx, st); err != nil {
					return false, err
				}
				st = a.st
			}
			st.Stage, st.DrainStarted = StageDrained, time.Time{}
			if err := a.save(st); err != nil {
				return false, err
			}
			a.crash("drained")

		case StageDrained:
			if a.abandoned() {
				log.Info("desired config changed before anything was written; re-planning")
				if err := a.save(State{Current: st.Current, Cordoned: a.cordonedBy(ctx, st)}); err != nil {
					return false, err
				}
				continue
			}
			cur, want, err := a.configs(st)
			if err != nil {
				return a.failed(ctx, a.fail(st, err))
			}
			boot, err := nodeops.BootID(a.o.Root, a.o.StateDir)
			if err != nil {
				return a.failed(ctx, a.fail(st, err))
			}
			if err := a.hook(ctx, nodeops.HookBeforeApply, &st); err != nil {
				if stopped(ctx, err) {
					return false, err
				}
				return a.failed(ctx, a.fail(st, err)) // nothing written
			}
			st.Stage, st.BootID = StageApplying, boot
			if err := a.save(st); err != nil {
				return false, err
			}
			a.crash("apply-before")
			if err := a.applier.Apply(ctx, cur, want); err != nil {
				var se *nodeops.StepError
				if ctx.Err() != nil && errors.As(err, &se) && se.RollbackErr == nil {
					// Stopped mid-apply (SIGTERM): Apply rolled back on a
					// context that outlived the signal. Not a failed
					// config: the next start plans it again.
					reason := fmt.Sprintf("stopped during the update to %s; rolled back to %s", st.Pending, orNone(st.Current))
					log.Warn(reason)
					if err := a.save(State{Current: st.Current, Cordoned: st.Cordoned}); err != nil {
						return false, err
					}
					a.report(api.StateWorking, reason)
					return false, ctx.Err()
				}
				if errors.As(err, &se) && se.RollbackErr != nil {
					// The journal is kept: roll back again until it works.
					st.Stage, st.Reason = StageRollingBack, err.Error()
					if err := a.save(st); err != nil {
						return false, err
					}
					continue
				}
				return a.failed(ctx, a.fail(st, err))
			}
			a.crash("apply-after")
			st.Stage = StageApplied
			if err := a.save(st); err != nil {
				return false, err
			}
			a.crash("applied")

		case StageApplied:
			if st.Plan != nil && st.Plan.Action == api.ActionReboot {
				if err := a.hook(ctx, nodeops.HookBeforeReboot, &st); err != nil {
					if stopped(ctx, err) {
						return false, err
					}
					return a.failed(ctx, a.rollback(st, err.Error())) // applied: put the originals back
				}
				st.Stage = StageRebooting
				if err := a.save(st); err != nil {
					return false, err
				}
				return false, a.reboot(ctx)
			}
			_, want, err := a.configs(st)
			if err != nil {
				return a.failed(ctx, a.rollback(st, err.Error()))
			}
			a.crash("actions-before")
			if st.Plan != nil {
				if err := nodeops.RunActions(ctx, a.o.Systemd, *st.Plan); err != nil {
					return a.failed(ctx, a.rollback(st, err.Error()))
				}
			}
			a.crash("actions-after")
			if reason := a.validate(ctx, want); reason != "" {
				return a.failed(ctx, a.rollback(st, reason))
			}
			a.crash("validated")
			st.Stage = StageCommitting
			if err := a.save(st); err != nil {
				return false, err
			}

		case StageRebooting:
			boot, err := nodeops.BootID(a.o.Root, a.o.StateDir)
			if err != nil {
				return false, err
			}
			if boot == st.BootID {
				// Persisted, but the reboot did not happen (a crash around
				// the request, or the machine refused): ask again.
				return false, a.reboot(ctx)
			}
			a.crash("boot-detected")
			_, want, err := a.configs(st)
			if err != nil {
				return false, err
			}
			if reason := a.validate(ctx, want); reason != "" {
				return a.bootFailed(ctx, st, "validation after reboot into "+st.Pending+" failed: "+reason)
			}
			if err := a.hook(ctx, nodeops.HookAfterReboot, &st); err != nil {
				if stopped(ctx, err) {
					return false, err
				}
				return a.bootFailed(ctx, st, "health gate after reboot into "+st.Pending+" failed: "+err.Error())
			}
			a.crash("validated")
			st.Stage = StageCommitting
			if err := a.save(st); err != nil {
				return false, err
			}

		case StageCommitting:
			a.crash("committing")
			if err := a.applier.Commit(); err != nil {
				a.report(api.StateDegraded, err.Error())
				return false, err
			}
			a.crash("commit-after")
			log.Info("update done")
			next := State{Current: st.Pending, Cordoned: st.Cordoned, Plan: st.Plan}
			if err := a.save(next); err != nil {
				return false, err
			}
			a.crash("current-saved")

		case StageRollingBack:
			if err := a.applier.Rollback(ctx); err != nil {
				reason := fmt.Sprintf("%s; rolling back failed: %v", st.Reason, err)
				a.report(api.StateDegraded, reason)
				return false, errors.New(reason)
			}
			cur, want, err := a.configs(st)
			if err == nil && st.Plan != nil && st.Plan.Action != api.ActionReboot {
				// Live changes were made for want: make the old config live
				// again the same way.
				back := api.PlanChanges(want, cur, a.policy())
				actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), nodeops.RollbackTimeout)
				err := nodeops.RunActions(actx, a.o.Systemd, back)
				cancel()
				if err != nil {
					log.WithError(err).Warn("reload after rollback failed")
				}
			}
			reason := st.Reason + "; rolled back to " + orNone(st.Current)
			log.Warn(reason)
			next := State{Current: st.Current, Cordoned: st.Cordoned, Plan: st.Plan,
				Reason: reason, Failed: st.Pending, FailedAt: a.o.Now().UTC(), Hook: st.Hook}
			if next.RebootBack, err = a.rebootBackNeeded(st); err != nil {
				return false, err
			}
			if err := a.save(next); err != nil {
				return false, err
			}

		case StageApplying:
			// Only reachable when recover did not run; it resolves this.
			return false, fmt.Errorf("stage %s needs recovery", st.Stage)

		default:
			return false, fmt.Errorf("unknown stage %q in %s", st.Stage, statePath(a.o.StateDir))
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "no config"
	}
	return s
}

// abandoned reports whether the pending config is no longer wanted.
func (a *agent) abandoned() bool {
	return a.want != nil && (a.want.err != nil || a.want.name() != a.st.Pending)
}

// idle: nothing in progress. Start an update if the desired config
// differs, otherwise uncordon (if we cordoned) and report.
func (a *agent) idle(ctx context.Context) (bool, error) {
	if a.st.RebootBack != "" {
		if again, err := a.rebootBack(ctx); again || err != nil {
			return false, err
		}
	}
	st := a.st
	d := a.want
	switch {
	case d == nil:
		return false, nil
	case d.err != nil:
		if err := a.uncordon(ctx); err != nil {
			return false, err
		}
		reason := fmt.Sprintf("refusing %s: %v", orNone(d.name()), d.err)
		var nf *notForwardError
		var uv *unverifiedError
		if errors.As(d.err, &nf) {
			reason = nf.Error()
		} else if errors.As(d.err, &uv) {
			reason = uv.Error()
		}
		a.report(api.StateDegraded, reason)
		return true, nil
	case d.none || d.name() == st.Current:
		if st.Reason != "" || st.Failed != "" || st.Hook != nil {
			st.Reason, st.Failed, st.Hook = "", "", nil
			if err := a.save(st); err != nil {
				return false, err
			}
		}
		if err := a.uncordon(ctx); err != nil {
			return false, err
		}
		if err := pruneConfigs(a.o.StateDir, st.Current); err != nil {
			a.log.WithError(err).Warn("prune kept configs")
		}
		a.report(api.StateDone, "")
		a.crash("idle")
		return true, nil
	case st.Failed == d.name() && a.o.Now().Before(st.FailedAt.Add(a.o.RetryFailed)):
		if err := a.uncordon(ctx); err != nil {
			return false, err
		}
		a.report(api.StateDegraded, st.Reason)
		return true, nil
	}
	// Start an update to d.
	cur, err := loadConfig(a.o.StateDir, st.Current)
	if err != nil {
		a.report(api.StateDegraded, err.Error())
		return false, err
	}
	if err := a.applier.Reconcilable(cur, d.rendered); err != nil {
		// Refused before anything is drained or written, as MCO's
		// reconcilable() refuses before its drain.
		reason := fmt.Sprintf("refusing %s: %v", d.name(), err)
		a.log.Warn(reason)
		if err := a.save(State{Current: st.Current, Cordoned: st.Cordoned, Plan: st.Plan,
			Reason: reason, Failed: d.name(), FailedAt: a.o.Now().UTC()}); err != nil {
			return false, err
		}
		if err := a.uncordon(ctx); err != nil {
			return false, err
		}
		a.report(api.StateDegraded, reason)
		return true, nil
	}
	if err := saveConfig(a.o.StateDir, d.name(), d.raw); err != nil {
		return false, err
	}
	a.crash("config-kept")
	plan := api.PlanChanges(cur, d.rendered, a.policy())
	a.log.WithFields(logrus.Fields{"rendered": d.name(), "action": plan.Action}).Info("planned update: " + plan.Summary())
	for _, c := range plan.Changes {
		a.log.WithFields(logrus.Fields{"rendered": d.name(), "action": plan.Action}).Debug(c.Reason)
	}
	next := State{Current: st.Current, Pending: d.name(), Stage: StagePlanned, Cordoned: st.Cordoned, Plan: &plan}
	if plan.Unreconcilable != "" {
		// MCO's daemon refuses such a change on a running node; so does
		// the agent, before it writes anything.
		return a.failed(ctx, a.fail(next, fmt.Errorf("unreconcilable: %s", plan.Unreconcilable)))
	}
	if err := a.save(next); err != nil {
		return false, err
	}
	a.report(api.StateWorking, "updating to "+d.name()+": "+plan.Summary())
	a.crash("planned")
	return a.advance(ctx)
}

func (a *agent) uncordon(ctx context.Context) error {
	if !a.st.Cordoned {
		return nil
	}
	a.crash("uncordon-before")
	if err := a.o.Drainer.Uncordon(ctx, a.o.Node); err != nil {
		a.report(api.StateDegraded, "uncordon: "+err.Error())
		return fmt.Errorf("uncordon: %w", err)
	}
	a.crash("uncordon-after")
	st := a.st
	st.Cordoned = false
	return a.save(st)
}

// configs loads the kept current and pending configs.
func (a *agent) configs(st State) (cur, want *api.Rendered, err error) {
	if cur, err = loadConfig(a.o.StateDir, st.Current); err != nil {
		return nil, nil, err
	}
	if want, err = loadConfig(a.o.StateDir, st.Pending); err != nil {
		return nil, nil, err
	}
	return cur, want, nil
}

// validate returns "" when the node matches want, else why not.
func (a *agent) validate(ctx context.Context, want *api.Rendered) string {
	findings, err := a.applier.Validate(ctx, want)
	if err != nil {
		return err.Error()
	}
	if len(findings) == 0 {
		return ""
	}
	parts := make([]string, 0, len(findings))
	for _, f := range findings {
		what := f.Path
		if what == "" {
			what = f.Unit
		}
		parts = append(parts, fmt.Sprintf("%s %s (want %s, found %s)", f.Kind, what, f.Expected, f.Found))
	}
	return strings.Join(parts, "; ")
}

// fail ends an update that wrote nothing (or whose Apply rolled itself
// back): the node stays at Current; idle uncordons and reports Degraded.
func (a *agent) fail(st State, cause error) error {
	reason := fmt.Sprintf("update to %s failed: %v", st.Pending, cause)
	a.log.Warn(reason)
	return a.save(State{Current: st.Current, Cordoned: st.Cordoned, Plan: st.Plan,
		Reason: reason, Failed: st.Pending, FailedAt: a.o.Now().UTC(), Hook: st.Hook})
}

// rollback abandons an applied update: it persists the intent; the
// StageRollingBack step does the work (again after a crash).
func (a *agent) rollback(st State, reason string) error {
	st.Stage, st.Reason = StageRollingBack, "update to "+st.Pending+" failed: "+reason
	return a.save(st)
}

// failed turns the result of fail or rollback into advance's result: on
// success the state machine goes on (to roll back, or to idle).
func (a *agent) failed(ctx context.Context, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	return a.advance(ctx)
}

// rebootFlushTimeout bounds the report push before a reboot.
const rebootFlushTimeout = 10 * time.Second

// reboot requests the reboot into the pending config. Everything needed
// after boot is persisted already (stage rebooting, boot id, configs).
func (a *agent) reboot(ctx context.Context) error {
	a.report(api.StateWorking, "rebooting into "+a.st.Pending)
	fctx, cancel := context.WithTimeout(ctx, rebootFlushTimeout)
	if err := a.reporter.Flush(fctx); err != nil {
		a.log.WithError(err).Warn("report before reboot not pushed")
	}
	cancel()
	a.crash("reboot-before")
	a.log.WithField("rendered", a.st.Pending).Info("rebooting")
	if err := a.o.Rebooter.Reboot(ctx, "stoker: apply "+a.st.Pending); err != nil {
		a.report(api.StateDegraded, err.Error())
		return err
	}
	a.crash("reboot-after")
	a.rebooted = true
	return nil
}
