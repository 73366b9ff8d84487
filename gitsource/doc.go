// Package gitsource is Stoker's Git transport: cheap ref checks, incremental
// fetches into a persistent cache, reading a commit's tree as files, and
// compare-and-swap commits, signed when a Signer is given. History hands
// package trust the commits' signatures and the exact bytes they sign.
// Descends tells whether a branch moved forward (the agents' forward-only
// rule), deepening a shallow cache when the history it holds is not
// enough. The hub and the agents reach Git only through it; it knows
// nothing of what the files mean.
//
// It must not import reconciler, agent or nodeops (it may import trust).
package gitsource
