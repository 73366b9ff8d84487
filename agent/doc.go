// Package agent is the node loop: it polls stoker/status, plans the change
// from the node's current config to its desired one, drives nodeops to
// apply it across drains and reboots, watches for drift, keeps its state on
// disk and reports to its own branch.
//
// # Drift
//
// While the node is idle at a config, the drift monitor (drift.go)
// watches the parent directory of every managed file, unit and dropin,
// and the systemd *.wants directories, with inotify; a change is checked
// 150ms after the last event, and everything (including kernel arguments
// and unit enablement) is checked at start and every --drift-interval
// (default 5m). Findings (content with expected/found sha256 and a short
// diff for small text files that do not look like secrets, mode, owner,
// missing, symlink, unit enablement/mask) go into the report, which turns
// Degraded with a reason like "drift: /etc/chrony.conf content changed"
// and is pushed at once. The file is left as found; when it is put back
// the findings clear and the report returns to Done. With the pool's
// stoker.dev/drift: restore the agent records the drift, re-applies its
// current config over itself and records a "drift-restored" event.
// Drift checks and updates hold the same lock, so an update's own writes
// are never reported.
//
// # Forced resync
//
// Creating the file "resync" in the state dir (touch
// /var/lib/stoker/resync, like MCO's /run/machine-config-daemon-force)
// makes the running agent re-apply its whole current config once, whatever
// the drift policy, and record a "resync" event; the agent removes the
// file when done. Kernel arguments and the OS image are not re-applied.
//
// # Forward only
//
// The agent acts only on a stoker/status head that descends from the last
// status commit it acted on, kept as statusCommit in agent-state.json and
// moved forward each time the agent reads its target from a new head. A
// head that does not descend (the branch was rewound, e.g. force-pushed
// from a stale clone, or replaced by an unrelated history) is refused:
// nothing is applied, the node keeps its config and reports Degraded with
// a reason naming both commits, until the branch moves forward again from
// the commit it acted on. People roll back with a new commit (git revert),
// never by moving the branch back. The ancestry check walks the Git cache
// and deepens a shallow cache when it must (gitsource Descends). To make a
// node adopt a new history on purpose (a re-created status repository),
// stop the agent and delete statusCommit from its state file.
//
// # Stopping
//
// On SIGTERM (the context ends) the pass in progress returns at its next
// step. An apply interrupted midway rolls itself back on a context that
// outlives the signal (nodeops RollbackTimeout), so the node is all-old or
// all-new, never between; such an update is not a failed config, the next
// start plans it again. The final report is pushed on a context that
// outlives the signal, bounded by ShutdownTimeout, and one line is logged:
// "agent stopping", with the stage and config.
//
// # Lifecycle hooks and health gates
//
// The host's hooks under /etc/stoker/hooks.d/{before-drain,before-apply,
// before-reboot,after-reboot} (nodeops HookRunner: run through the same
// mechanism as the OS tools, bounded by --hook-timeout) run at their stage
// of the update, before the next stage is saved (hooks.go says what each
// failure does). after-reboot is a health gate: the update is committed
// only once it passes; with --auto-rollback a failure rolls the node back
// to its last good config and reboots into it (rollback.go). The failed
// hook's path, error and output are kept in the state (Hook) and
// reported. A hook a killed agent left running is killed at the next
// start.
//
// # A full disk
//
// When the state dir (or the Git cache, by default beside it under /var)
// refuses writes (ENOSPC, EDQUOT, EROFS: gitsource.IsDiskFull), the pass
// stops where it is and the node reports Degraded with the reason, never
// Done at its old config: the report commit is built in memory on top of
// what the cache holds and pushed from there (gitsource spill.go), so it
// needs no space. Nothing is applied without its state saved first; once
// space is freed the next pass goes on.
//
// # Names, labels, retries and --once
//
// The node name must be a DNS-1123 subdomain and a valid Git ref component
// (api.ValidateNodeName), and labels keys and values valid as Kubernetes
// validates them (api.ValidateLabels); both are checked at start, before
// anything is pushed. A failed pass is retried after a wait.Backoff delay
// (Options.Backoff: growing, capped, with jitter so a fleet does not retry
// in lockstep after a Git outage); report pushes back off the same way.
// With --once, transient Git errors (gitsource.IsRetryable) are retried,
// any other error (a blocked drain too) stops the agent, and a node that ends
// Degraded (update failed or refused) returns ErrDegraded: the command
// exits 1 then, 2 on other errors.
//
// It must not import reconciler: an agent only ever reads what the hub
// wrote to Git.
package agent
