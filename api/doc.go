// Package api holds Stoker's shared vocabulary: the OpenShift kinds a config
// repo contains (MachineConfig, MachineConfigPool, MachineConfiguration), the
// file formats of the stoker/status and stoker/fleet branches and of node
// reports, and the pure logic both the hub and the agent need — validating a
// rendered config and mapping a config diff to disruption actions.
//
// The size limits both sides check before reading or expanding input
// live here too (limits.go: per file and per config decompressed, per
// manifest file, per Git blob, MaxRenderedBytes), so a config the hub
// accepts is one every node accepts. ValidUnitName is systemd's unit name
// grammar, plus a refusal of a leading "-" (beyond MCO).
//
// It must not import any other package of this module: everything else
// imports api, so api importing them would make a cycle of meaning even where
// Go would allow it.
package api
