//go:build agentonly

package main

import (
	"os"
	"runtime/debug"
)

// agentGCPercent is the agent-only builds' GOGC when the environment sets
// none. An idle agent's live heap is about 1 MB, so Go's default (the heap
// may double before a collection, 4 MB at the least) is most of its
// anonymous memory; at 50 the host agent idles 2 MiB smaller and collects
// a little more often (an idle poll allocates about 60 KB). GOGC and
// GOMEMLIMIT in the environment still win (docs/scale.md).
const agentGCPercent = 50

func init() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(agentGCPercent)
	}
}
