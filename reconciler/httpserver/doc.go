// Package httpserver is the hub's HTTP side: /healthz and /readyz from the
// outcome of the last reconcile, /metrics (the hub's Prometheus metrics,
// defined here), and /hooks/git, the push webhook (GitHub, GitLab, Gitea
// payloads, signature or token checked) that triggers a reconcile.
//
// It must not import the hub loop (reconciler) or its other sub-packages,
// gitsource, agent or nodeops: the hub hands it callbacks.
package httpserver
