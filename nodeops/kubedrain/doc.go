// Package kubedrain is the agent's Kubernetes side (--drain kube): it
// cordons and drains a node through the Eviction API with kubectl's drain
// helper, so PodDisruptionBudgets are respected, retries with backoff up to
// an overall deadline, uncordons only what it cordoned, and mirrors the
// agent's state onto the Node as stoker.dev/ annotations.
//
// It implements nodeops.Drainer and nodeops.NodeAnnotator with a
// kubernetes.Interface; every API call is bounded by a context deadline.
// Like all of nodeops it never imports gitsource, reconciler or agent.
package kubedrain
