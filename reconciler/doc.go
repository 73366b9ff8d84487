// Package reconciler is the hub: it loads a config repo, validates and
// renders one config per pool with MCO's semantics, plans rollouts, and runs
// the loop that writes stoker/status (desired) and stoker/fleet (observed),
// plus the hub's HTTP server.
//
// It must not import agent or nodeops: the hub never touches a host.
package reconciler
