// Package fleetbench is the fleet load harness (build tag fleetbench,
// `make bench-fleet`): N real agents (agent.Run, each with its own root,
// state dir and Git cache) in one process against one `stoker hub`
// process and one git daemon on loopback. It measures the steady-state CPU
// of hub, agents and Git server per node per poll, the hub's memory, and
// push -> all Done against batches x (interval + 2 s).
//
// Drift watching is off in its agents (agent.Options.NoInotify: 1,000
// watchers would exhaust the user's inotify instances, shared with the
// rest of the machine), and git daemon runs with --max-connections=0 (its
// default of 32 refuses polls). It imports agent, api, demo and test
// helpers; nothing imports it.
package fleetbench
