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
// It must not import agent or nodeops: the hub never touches a host.
package reconciler
