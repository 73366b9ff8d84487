// Package chart tests charts/stoker with the real helm binary: lint,
// template with the objects checked, and install into a real
// kube-apiserver (test/kubeapi), where the installed RBAC is exercised by
// impersonating the chart's ServiceAccounts: the agent drains and
// annotates its node, the hub lists nodes and holds its Lease, and neither
// can delete nodes or read Secrets.
//
// helm comes from PATH or the cache hack/helm.sh fills; without it the
// tests skip unless STOKER_REQUIRE_KUBE is set.
package chart
