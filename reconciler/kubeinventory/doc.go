// Package kubeinventory is the hub's view of nodes from the Kubernetes API
// (in-cluster config or --kubeconfig): labels (zone included), creation
// time for oldest-first rollouts, and the Ready condition, since a NotReady
// node counts as unavailable. It implements reconciler.Inventory; without
// Kubernetes the hub works from agent reports alone.
//
// Like all of reconciler it never imports agent or nodeops.
package kubeinventory
