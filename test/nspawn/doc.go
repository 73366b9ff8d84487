// Package nspawn boots real systemd machines for end-to-end tests: each
// test machine is a copy (an overlay where the kernel allows it) of a
// cached Debian root filesystem booted with `systemd-nspawn -b` on the
// host network, so it can reach Git servers on 127.0.0.1.
//
// A Machine counts boots: when systemd inside reboots, systemd-nspawn exits
// with status 133 and the harness starts it again on the same directory,
// which is what a reboot is for a container; a poweroff ends the machine.
// Commands run inside with nsenter into the container's namespaces, which
// works without machined (the host here does not run systemd).
//
// The root filesystem comes from hack/nspawn-rootfs.sh
// (STOKER_NSPAWN_ROOTFS, or the cache that script fills). When it, root
// privileges, systemd-nspawn or nsenter are missing, tests skip with a
// message unless STOKER_REQUIRE_NSPAWN is set, in which case they fail: CI
// sets it.
//
// It is test infrastructure: it imports none of Stoker's packages.
package nspawn
