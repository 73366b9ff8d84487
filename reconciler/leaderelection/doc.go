// Package leaderelection lets several hub replicas run safely: only the
// holder of a coordination.k8s.io Lease runs the hub loop, and another
// replica takes over when the leader stops or loses the Lease. It wraps
// client-go's leader election with the hub's defaults.
//
// Like all of reconciler it never imports agent or nodeops.
package leaderelection
