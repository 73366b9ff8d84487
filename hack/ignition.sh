#!/usr/bin/env bash
# Builds the real Ignition binary (github.com/coreos/ignition/v2, its
# internal/ main package) and caches it under
# ~/.cache/stoker/ignition-<version>/ignition, then prints that path.
# Tests read it from STOKER_IGNITION_BIN. Ignition needs cgo and libblkid
# (Debian: libblkid-dev). It is built as a distribution without SELinux
# (Debian, like the test machines' root) builds it: no relabeling after
# the files stage. Cold: ~5 minutes; warm: instant.
set -euo pipefail
IGNITION_VERSION=${IGNITION_VERSION:-v2.26.0}
cache=${STOKER_CACHE:-$HOME/.cache/stoker}/ignition-${IGNITION_VERSION}
bin=$cache/ignition
if [[ -x $bin ]]; then echo "$bin"; exit 0; fi
pkg-config --exists blkid 2>/dev/null || [[ -e /usr/include/blkid/blkid.h ]] ||
  { echo "libblkid headers not found: apt-get install libblkid-dev" >&2; exit 1; }
mkdir -p "$cache"
GOBIN=$cache/gobin CGO_ENABLED=1 GOFLAGS=-mod=mod go install -buildmode=pie \
  -ldflags "-X github.com/coreos/ignition/v2/internal/version.Raw=${IGNITION_VERSION} -X github.com/coreos/ignition/v2/internal/distro.selinuxRelabel=false" \
  "github.com/coreos/ignition/v2/internal@${IGNITION_VERSION}" >&2
mv "$cache/gobin/internal" "$bin.tmp"
rmdir "$cache/gobin"
mv "$bin.tmp" "$bin"
echo "$bin"
