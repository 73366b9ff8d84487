// Package api holds Stoker's shared vocabulary: the OpenShift kinds a config
// repo contains (MachineConfig, MachineConfigPool, MachineConfiguration), the
// file formats of the stoker/status and stoker/fleet branches and of node
// reports, and the pure logic both the hub and the agent need — validating a
// rendered config and mapping a config diff to disruption actions.
//
// It must not import any other package of this module: everything else
// imports api, so api importing them would make a cycle of meaning even where
// Go would allow it.
package api
