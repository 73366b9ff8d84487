// Package kubeapi starts a real etcd and kube-apiserver on loopback for
// tests: random ports, data under a temporary directory, token
// authentication and RBAC authorization, with an admin identity in
// system:masters and helpers that impersonate ServiceAccounts so RBAC is
// really enforced.
//
// The binaries come from hack/kube-apiserver.sh (KUBEBUILDER_ASSETS, or the
// cache it fills). When they are missing, tests skip with a message unless
// STOKER_REQUIRE_KUBE is set, in which case they fail: CI sets it.
//
// It is test infrastructure: it imports none of Stoker's packages.
package kubeapi
