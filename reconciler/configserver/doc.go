// Package configserver is the hub's machine-config-server: on its own
// listener it serves /config/<pool>, the Ignition config a machine fetches
// on first boot — the pool's rendered config from stoker/status plus what
// the machine needs to join the fleet (the agent's unit and flags, its
// read-only Git credentials, the trusted hub keys, labels from the pool's
// nodeSelector) and the agent's state seeded with that rendered config, so
// the agent's first start validates what Ignition wrote instead of applying
// it again.
//
// Unlike MCO's server, every request needs a per-pool bearer token
// (Tokens; several per pool while one is rotated out), the listener speaks
// TLS unless plain HTTP is asked for explicitly, clients are rate limited,
// and every request is logged once without its token. The Ignition spec
// version is negotiated from the Accept header as MCO's server does.
//
// It reads the hub's state only through a Snapshot callback; it must not
// import the hub loop (reconciler) or its other sub-packages, gitsource,
// agent or nodeops.
package configserver
