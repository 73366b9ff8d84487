// Package rollout is the hub's rollout planner: which pool each node belongs
// to (custom pool over worker, master over custom), how many nodes a pool
// may take down (maxUnavailable), and which nodes advance next (zone
// alphabetically, then oldest first). A node counts as unavailable when it
// is NotReady, Unreachable (the hub's verdict on a stale report), has not
// reported, is not Done or not yet at its desired config; an unavailable
// node uses maxUnavailable capacity, as in MCO's getUnavailableMachines.
//
// Beyond MCO (Stoker extensions, reviewed in the config repo): a pool's
// maintenance window lets the updates it gates start only while open (the
// clock is PlanPool.Now); nodes held in .stoker/rollout.yaml never get a
// new target; its order comes before zone-then-age. Blocked says why a
// node waits.
//
// It is pure: its inputs are plain structs, the clock is data in them, and
// it does no I/O. It must not import gitsource (or any Git library),
// net/http, agent, nodeops or any other reconciler package.
package rollout
