// Package reconciler is the hub loop. Each reconcile runs named steps, one
// file each: check refs and fetch (refs.go), load, validate and render every
// pool (renderstep.go, through package render), read node reports and the
// hub's own branches (trees.go), plan the rollout (plan.go, through package
// rollout), write stoker/status and stoker/fleet (write.go, README through
// package fleetview), and previews (preview.go). RunHub (run.go) wires the
// loop to Git, a ticker, the push webhook and the HTTP server (package
// httpserver).
//
// The sub-packages own one step each and never import this package:
// render (pure), rollout (pure), review (`stoker diff`), fleetview
// (`stoker status`), httpserver, kubeinventory, leaderelection.
//
// # Unreachable
//
// A node whose last report or heartbeat is older than UnreachableAfter
// (--unreachable-after × --agent-heartbeat, default 3 × 10m) at the hub's
// clock is Unreachable in stoker/fleet (state, reason naming when it was
// last seen, LAST-SEEN in the README and in `stoker status`) and counts as
// unavailable in its pool's rollout, using maxUnavailable capacity as MCO
// counts a NotReady node (getUnavailableMachines). The verdict is part of
// the reconcile fingerprint, so the clock alone makes the hub write it.
//
// It must not import agent or nodeops: the hub never touches a host.
package reconciler
