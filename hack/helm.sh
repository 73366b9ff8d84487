#!/usr/bin/env bash
# Installs helm from source with `go install` and caches it under
# ~/.cache/stoker/helm-<version>/bin, then prints that bin directory.
# Tests find helm on PATH (.ci/run puts this directory there).
# Cold: ~3 minutes; warm: instant.
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-v3.19.0}
bin=${STOKER_CACHE:-$HOME/.cache/stoker}/helm-${HELM_VERSION}/bin
if [[ ! -x $bin/helm ]]; then
  mkdir -p "$bin"
  GOBIN=$bin CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags "-s -w" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
fi
echo "$bin"
