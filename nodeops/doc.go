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
// The apply journal (<state-dir>/apply-journal.json, its backups in
// apply-journal.d/) follows three rules, so a crash or an I/O error at any
// instant — also during cleanup — never wedges the node:
//
//   - One commit point. Commit saves the journal as "committed"; before
//     that everything can be rolled back, after it nothing is, and only
//     cleanup is left, which Commit or Recover finishes.
//   - Recovery is idempotent. Every undo puts back a recorded state (file
//     content, mode and owner; unit enablement; kernel arguments), so an
//     undo that already happened counts as done when it runs again; kernel
//     arguments are read first and only what is still to undo is changed.
//   - Data goes after the record that points to it. The journal is
//     removed before its backups, originals are dropped only while the
//     committed journal still lists them, and data no journal points to
//     is removed at the next Recover or Apply. A journal whose backups are
//     gone (left by an older Stoker, which deleted them first) recorded a
//     finished operation and is removed.
//   - An undo finishes even when its caller's context was cancelled (the
//     agent stopping on SIGTERM mid-apply): it runs on a context that
//     outlives the caller's, bounded by RollbackTimeout.
//
// Sizes: a file's contents are never held expanded. A data: URL is
// decoded (its size is bounded by the rendered config's), gunzipped as a
// stream through a reader that fails past the per-file limit, measured
// (size, sha256) once when the desired state is built, and streamed again
// into the temporary file when written. Existing files, backups and
// originals are compared by digest and copied as streams. The limits are
// the hub's (api.DefaultMaxFileBytes per file, api.DefaultMaxConfigBytes
// per config; ApplierOptions can change them), so a config the hub
// accepted is one the node accepts; over them the apply is refused
// before anything is written.
//
// Temporary files: WriteFile's temporary ".<name><digits>" (renameio's
// name) is left behind when a write is killed before its rename.
// SweepTemp (agent start) and Recover remove them — only that pattern,
// only next to a file a known config or the journal manages (never a
// name that is itself managed), next to originals, and in the state
// dir's own directories — so a user's file is never touched.
//
// Paths: every host path is resolved under the root with securejoin
// (Resolve), which never leaves the root, and follows a symlink in a
// parent directory only when systemd's safe-mode chase would: the link
// and the directory holding it are owned by root (or the agent's own
// user) and the directory is writable by no one else. RHCOS's /home,
// /root, /opt, /srv and /usr/local -> /var links pass; a link a local
// user planted (/tmp/cache -> /etc/cron.d) is refused with its path
// named (ErrUnsafeSymlink), for writes and removals alike. The last
// element is never followed: a symlink there is refused.
//
// Unit names are checked with systemd's own grammar (api.ValidUnitName)
// before they reach systemctl or D-Bus, and every systemctl call puts
// "--" before its unit arguments. A name starting with "-" is refused:
// systemd accepts "-foo.service", but systemctl would read it as an
// option. That refusal goes beyond MCO, which checks only the suffix.
//
// The host is reached through Host: on the host itself Root is "/"; in
// the agent's DaemonSet it is /host, and systemd is still the host's own
// (over <root>/run/systemd/private or <root>/run/dbus/system_bus_socket,
// NewHostSystemd), the reboot the host's logind, and rpm-ostree, bootc and
// grubby the host's own binaries run chrooted into the root (Tools). Only
// an explicitly offline Host (image builds, simulated fleets) uses
// `systemctl --root` and records restarts and reloads instead of doing
// them. Reconcilable refuses what no backend can do on a running node
// (kernelType, extensions, a FIPS flag the kernel does not have) before
// anything is written.
//
// Lifecycle hooks (HookRunner): executables under
// /etc/stoker/hooks.d/<point>/ on the host run through Tools too —
// chrooted into a live root, directly on "/" or in an offline tree — in
// run-parts order, each bounded by a timeout that kills its process
// group, only when root alone could have put them there (a regular file,
// owned by root, not writable by group or others, in such a directory);
// their output is kept bounded (HookOutputBytes).
//
// Originals of files Stoker overwrites for the first time are kept under
// <state-dir>/orig/<path> (MCO keeps <path>.mcdorig) and put back when the
// file leaves the config. The core user's keys go to
// ~core/.ssh/authorized_keys.d/ignition, as on RHCOS.
//
// It must not import gitsource, reconciler or agent: it applies what it is
// given and knows nothing of where it came from.
package nodeops
