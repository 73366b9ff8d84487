# syntax=docker/dockerfile:1
# Static binaries on an empty base: `stoker hub` and the agent-only build of
# `stoker agent` run from this image (see charts/stoker). Build: docker build -t stoker .
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/stoker ./cmd/stoker \
 && CGO_ENABLED=0 go build -trimpath -tags agentonly -ldflags "-s -w -X main.version=${VERSION}" -o /out/stoker-agent-kube ./cmd/stoker \
 && mkdir -p /out/tmp && chmod 1777 /out/tmp

FROM scratch
# CA certificates for HTTPS Git remotes; /tmp for Git work files.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tmp /tmp
COPY --from=build /out/stoker /usr/bin/stoker
# The agent-only build the DaemonSet runs: no hub, renderers or Prometheus
# linked, so an idle agent holds about 34 MiB instead of 55 (docs/scale.md).
COPY --from=build /out/stoker-agent-kube /usr/bin/stoker-agent-kube
# The hub runs as this user (the chart sets it); the agent runs as root.
USER 65532:65532
ENTRYPOINT ["/usr/bin/stoker"]
