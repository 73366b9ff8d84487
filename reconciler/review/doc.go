// Package review is `stoker diff`: it renders a base and a head (two
// directories or two Git revisions of a checkout), compares them per pool
// down to file contents, units, ssh keys and kernel arguments, maps each
// change to its disruption with the node disruption policy, and, given
// stoker/fleet, says how many nodes the change reaches and in how many
// rounds. Output is text, Markdown (for a pull request) or JSON.
//
// It uses render, rollout and fleetview; it must not import the hub loop
// (reconciler), net/http, agent or nodeops.
package review
