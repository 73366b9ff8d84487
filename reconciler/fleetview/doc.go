// Package fleetview reads the stoker/fleet branch and prints it: the pool
// table like `oc get mcp`, the node table like `oc get nodes`, the
// README.md the hub commits to stoker/fleet, and `stoker status` (once or
// watching).
//
// It must not import the hub loop (reconciler) or its other sub-packages,
// agent or nodeops.
package fleetview
