# Stoker's Makefile documents itself: `make help`.
SHELL := /bin/bash
GO ?= go
BIN := bin/stoker
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Packages: everything; end-to-end tests live in test/ behind the e2e tag.
PKGS := ./...
TEST_FLAGS ?= -race -count=1 -timeout 40m
FUZZTIME ?= 20s

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/stoker.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/stoker

.PHONY: build-agent
build-agent: ## Agent-only builds: bin/stoker-agent (no Kubernetes mode, for hosts) and bin/stoker-agent-kube (the DaemonSet's).
	CGO_ENABLED=0 $(GO) build -trimpath -tags agentonly,nokube -ldflags '$(LDFLAGS)' -o bin/stoker-agent ./cmd/stoker
	CGO_ENABLED=0 $(GO) build -trimpath -tags agentonly -ldflags '$(LDFLAGS)' -o bin/stoker-agent-kube ./cmd/stoker

.PHONY: demo
demo: build ## A local fleet (Git server, hub, 4 agents) walking a rollout; under 2 minutes.
	$(BIN) demo

.PHONY: fmt-check
fmt-check: ## Fail if gofmt would change a file.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [[ -n "$$out" ]]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet every package (including e2e-tagged tests).
	$(GO) vet $(PKGS)
	$(GO) vet -tags e2e ./test/...
	$(GO) vet -tags agentonly,nokube ./cmd/stoker ./api/
	$(GO) vet -tags agentonly ./cmd/stoker

.PHONY: lint
lint: fmt-check vet ## fmt check and vet (staticcheck too when installed).
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); fi

.PHONY: unit
unit: ## Unit and integration tests with -race.
	$(GO) test $(TEST_FLAGS) $(PKGS)
	$(GO) test $(TEST_FLAGS) -tags agentonly,nokube ./api/

.PHONY: e2e
e2e: build ## End-to-end fleet tests (real Git server, agents as processes).
	STOKER_BIN=$(CURDIR)/$(BIN) $(GO) test -tags e2e -count=1 -timeout 30m ./test/e2e/ ./test/nspawn/

.PHONY: fuzz
fuzz: ## A short fuzz run of load+render.
	$(GO) test -run '^$$' -fuzz FuzzLoadRender -fuzztime $(FUZZTIME) ./reconciler/render/

.PHONY: test
test: fmt-check vet unit fuzz e2e ## Everything CI runs.

.PHONY: bench
bench: ## Benchmarks (performance goals live here, not in timed tests).
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

FLEET_NODES ?= 50
FLEET_INTERVAL ?= 15s
FLEET_HUB_INTERVAL ?= 2s
FLEET_IDLE ?= 60s
FLEET_BENCH_NODES ?= 1000
.PHONY: bench-fleet
bench-fleet: build ## Fleet load harness (FLEET_NODES agents, one hub, one Git server), then BenchmarkHubIdle and BenchmarkReportPush at FLEET_BENCH_NODES (docs/scale.md; 1,000 agents: FLEET_NODES=1000 FLEET_INTERVAL=60s FLEET_IDLE=120s).
	STOKER_BIN=$(CURDIR)/$(BIN) $(GO) test -tags fleetbench -count=1 -timeout 60m -v -run TestFleet -bench 'BenchmarkHubIdle|BenchmarkReportPush' -benchtime 5x ./test/fleetbench/ \
		-args -nodes $(FLEET_NODES) -interval $(FLEET_INTERVAL) -hub-interval $(FLEET_HUB_INTERVAL) -idle $(FLEET_IDLE) -bench-nodes $(FLEET_BENCH_NODES)

.PHONY: clean
clean: ## Remove build output.
	rm -rf bin
