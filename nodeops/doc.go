// Package nodeops makes host changes under a root directory: atomic file
// writes with backups and rollback, systemd units and dropins, ssh keys,
// kernel arguments and OS image backends, drain and reboot. The root is "/"
// on a real host and a temporary directory in tests.
//
// How the agent drives it (see Applier):
//
//	j, err := applier.Recover(ctx)        // at every start: rolls back an
//	                                      // apply a crash interrupted; an
//	                                      // "applied" journal is returned
//	                                      // for the agent to Commit or Rollback
//	plan := api.PlanChanges(cur, want, policy)
//	drainer.Drain(...) if plan.Disruptive()
//	persist {pending: want, stage: applying, bootID}
//	applier.Apply(ctx, cur, want)         // all or nothing; *StepError
//	persist {stage: applied}
//	plan.Action == Reboot ? rebooter.Reboot : RunActions(ctx, systemd, plan)
//	findings := applier.Validate(ctx, want) // after boot (BootID changed)
//	applier.Commit()                      // or applier.Rollback(ctx)
//	persist {current: want}; drainer.Uncordon(...)
//
// Originals of files Stoker overwrites for the first time are kept under
// <state-dir>/orig/<path> (MCO keeps <path>.mcdorig) and put back when the
// file leaves the config. The core user's keys go to
// ~core/.ssh/authorized_keys.d/ignition, as on RHCOS.
//
// It must not import gitsource, reconciler or agent: it applies what it is
// given and knows nothing of where it came from.
package nodeops
