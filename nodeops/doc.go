// Package nodeops makes host changes under a root directory: atomic file
// writes with backups and rollback, systemd units and dropins, ssh keys,
// kernel arguments and OS image backends, drain and reboot. The root is "/"
// on a real host and a temporary directory in tests.
//
// It must not import gitsource, reconciler or agent: it applies what it is
// given and knows nothing of where it came from.
package nodeops
