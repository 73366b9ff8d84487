// Package kubeclient builds the one Kubernetes client the hub and the agent
// use: from a kubeconfig file, or from the in-cluster ServiceAccount when
// none is given. It is a leaf: it imports no other package of ours, so both
// reconciler (hub side) and nodeops (node side) may use it.
package kubeclient
