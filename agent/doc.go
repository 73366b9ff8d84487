// Package agent is the node loop: it polls stoker/status, plans the change
// from the node's current config to its desired one, drives nodeops to
// apply it across drains and reboots, watches for drift, keeps its state on
// disk and reports to its own branch.
//
// It must not import reconciler: an agent only ever reads what the hub
// wrote to Git.
package agent
