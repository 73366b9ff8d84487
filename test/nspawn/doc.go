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
// A typical end-to-end test runs the agent as a unit, so it survives the
// reboots it asks for:
//
//	m := nspawn.Boot(t, nspawn.Options{
//		Binds: []nspawn.Bind{{Source: binDir, Target: "/opt/stoker/bin", ReadOnly: true}},
//	})
//	_ = m.WriteFile("/etc/systemd/system/stoker-agent.service", unit, 0o644)
//	_, _ = m.Run(ctx, "systemctl", "enable", "--now", "stoker-agent.service")
//	// ... push a reboot-requiring change ...
//	err := m.WaitBoot(ctx, 2)
//
// It is test infrastructure: it imports none of Stoker's packages.
package nspawn
