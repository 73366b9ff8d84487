// Package fleetbench is the fleet load harness (build tag fleetbench,
// `make bench-fleet`): N real agents (agent.Run, each with its own root,
// state dir and Git cache) in one process against one `stoker hub`
// process and one Git server on loopback. Agents start evenly over a ramp
// (as machines boot, not all in one instant), and every wait has a
// deadline of at least a minute that scales with N and the interval; a
// wait that runs out logs what the fleet looked like and the harness
// still reports the numbers it has.
//
// It measures, per component (hub, agents, Git server), the steady-state
// CPU in cores and per node per poll; bytes per agent poll and per hub
// loop on the wire (the hub and every k-th agent talk through a counting
// TCP proxy); the hub's loops, CPU per loop and memory (its /metrics and
// /proc); push -> all Done against batches x (interval + 2 s), and the
// CPU and bytes the rollout cost.
//
// What it changes from a real fleet, on purpose: drift watching is off in
// its agents (agent.Options.NoInotify: 1,000 watchers would exhaust the
// user's inotify instances, shared with the rest of the machine); the Git
// server is `git daemon --inetd` run per connection by
// systemd-socket-activate, because git daemon's own listener has a
// hard-coded backlog of 5 that a fleet's bursts overflow (the kernel drops
// the SYNs, clients stall in TCP's retransmit backoff past their
// timeouts), and its default --max-connections of 32 refuses polls. It
// imports agent, api, demo and test helpers; nothing imports it.
package fleetbench
