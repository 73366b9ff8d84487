#!/usr/bin/env bash
# Builds a Debian bookworm (minbase) root filesystem that boots under
# `systemd-nspawn -b`, caches it under
# ~/.cache/stoker/nspawn-bookworm-<key>/rootfs and prints that path.
# <key> is a hash of this script, so editing the package list or the
# tweaks below builds a fresh cache. The build happens in a temporary
# directory that is renamed into place only when complete, so an
# interrupted build never leaves a half cache behind.
# The Debian mirror comes from this machine's apt sources (override with
# DEBIAN_MIRROR=...). Cold: ~2 minutes; warm: instant. Needs root.
set -euo pipefail

SUITE=bookworm
# systemd + dbus so the node is a real systemd machine; git and
# ca-certificates for what the agent may shell out to. The agent itself is
# a static binary bind-mounted in by the test harness.
PACKAGES=(systemd systemd-sysv dbus ca-certificates git)

self=$(readlink -f "${BASH_SOURCE[0]}")
key=$(sha256sum "$self" | cut -c1-12)
cache_root=${STOKER_CACHE:-$HOME/.cache/stoker}
final=$cache_root/nspawn-$SUITE-$key

if [[ -x $final/rootfs/lib/systemd/systemd ]]; then
  echo "$final/rootfs"
  exit 0
fi

[[ $(id -u) == 0 ]] || { echo "nspawn-rootfs: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "nspawn-rootfs: debootstrap not found: apt-get install debootstrap" >&2; exit 1; }

# mirror prints the first apt source URI that serves "$SUITE" (not
# -updates or -security), from one-line .list files and deb822 .sources.
mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    awk -v s="$SUITE" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i+1) == s) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk -v s="$SUITE" '
      function flush() {
        if (deb && hit && uri != "") { print uri; found = 1; exit }
        deb = 0; hit = 0; uri = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:"  { uri = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
      tolower($1) == "enabled:" && tolower($2) == "no" { deb = 0 }
      END { if (!found) flush() }' "$f"
  done
}
MIRROR=${DEBIAN_MIRROR:-$(mirror | head -n1)}
[[ -n $MIRROR ]] || { echo "nspawn-rootfs: no apt source for $SUITE found; set DEBIAN_MIRROR" >&2; exit 1; }

mkdir -p "$cache_root"
exec 9>"$cache_root/.nspawn-$SUITE.lock"
flock 9
# Another build may have finished while we waited for the lock.
if [[ -x $final/rootfs/lib/systemd/systemd ]]; then
  echo "$final/rootfs"
  exit 0
fi

# unmount_under lazily unmounts everything debootstrap left mounted below $1
# (proc, sys, ...), deepest first, so that removing the tree is safe.
unmount_under() {
  local dir
  dir=$(readlink -f "$1")
  awk -v d="$dir/" 'index($2 "/", d) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
}

# Leftovers of interrupted builds: we hold the lock, so nobody owns them.
for stale in "$cache_root"/.nspawn-"$SUITE"-*.tmp.*; do
  [[ -e $stale ]] || continue
  unmount_under "$stale"
  rm -rf --one-file-system "$stale"
done

tmp=$(mktemp -d "$cache_root/.nspawn-$SUITE-$key.tmp.XXXXXX")
cleanup() {
  unmount_under "$tmp"
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
root=$tmp/rootfs

start=$(date +%s)
echo "nspawn-rootfs: debootstrap $SUITE from $MIRROR into $root" >&2
include=$(IFS=,; echo "${PACKAGES[*]}")
debootstrap --variant=minbase --include="$include" "$SUITE" "$root" "$MIRROR" >&2

# Tweaks for a container that boots without a TTY:
# - no first-boot prompts and no getty on the (piped) console;
# - units that need hardware or a real kernel interface are masked so the
#   machine reaches "running" rather than "degraded";
# - the machine ID is left empty: the harness writes one per machine.
for unit in systemd-firstboot.service console-getty.service getty@.service \
  systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
  sys-kernel-tracing.mount systemd-udevd.service systemd-udev-trigger.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo stoker-node > "$root/etc/hostname"
# Short journal, no persistent log growth in per-test copies.
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=8M\n' > "$root/etc/systemd/journald.conf.d/stoker.conf"
# apt caches are dead weight in every copy.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

unmount_under "$root"
# A final directory without systemd in it is not a cache entry: replace it.
if [[ -e $final ]]; then
  unmount_under "$final"
  rm -rf --one-file-system "$final"
fi
mv "$tmp" "$final"
trap - EXIT
echo "nspawn-rootfs: built $final/rootfs in $(( $(date +%s) - start ))s" >&2
echo "$final/rootfs"
