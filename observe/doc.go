// Package observe owns what the hub and the agent share to be operated:
// the stoker_build_info metric, the logger's --log-format, and the small
// HTTP server of /metrics and /healthz the agent listens with.
//
// It must not import api, reconciler, gitsource, agent, nodeops, trust,
// cmd, demo or test: both daemons import it, and it knows neither.
package observe
