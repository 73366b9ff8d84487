// Command stoker is the single Stoker binary. main only wires flags into
// each package's Options and calls its Run; it picks the exit code and
// nothing else.
//
// Two build tags make a smaller agent from the same files (`make
// build-agent`, docs/scale.md): agentonly keeps only the agent command (no
// hub, render, validate, diff, status or demo: none of their renderers,
// Ignition translators or Prometheus), and nokube drops the agent's
// Kubernetes mode (client-go and kubectl's drain are not linked, so their
// scheme registrations do not run at start). A package's init runs when it
// is linked, used or not: leaving it out of the build is the only way to
// keep it out of an idle agent's memory. With both tags package api's
// Kubernetes types are its own slim structs, so apimachinery's meta/v1 is
// not linked either (api/meta_slim.go). The agent-only builds also collect
// garbage at GOGC=50 unless GOGC is set (gc_agentonly.go).
package main
