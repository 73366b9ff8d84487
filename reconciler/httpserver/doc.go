// Package httpserver is the hub's HTTP side: /healthz and /readyz from the
// outcome of the last reconcile, /metrics (the hub's Prometheus metrics,
// defined here), and /hooks/git, the push webhook (GitHub, GitLab, Gitea
// payloads, signature or token checked) that triggers a reconcile.
//
// No client can hold the server: every connection has read-header, read,
// write and idle timeouts, headers are bounded (MaxHeaderBytes, 431), the
// webhook body is read through http.MaxBytesReader (413 over the limit),
// and netutil.LimitListener bounds the connections open at once (Limits,
// DefaultLimits). Every rejected webhook is logged once with the client,
// the status and why.
//
// It must not import the hub loop (reconciler) or its other sub-packages,
// gitsource, agent or nodeops: the hub hands it callbacks.
package httpserver
