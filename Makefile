# Temporal Batch. `make help` lists the targets.
SHELL := /usr/bin/env bash -o pipefail
.DEFAULT_GOAL := help

GO       ?= go
BIN      := $(CURDIR)/bin
export GOFLAGS ?= -buildvcs=false

TEMPORAL_CLI_VERSION := v1.5.1
TEMPORAL_CLI := $(BIN)/temporal-$(TEMPORAL_CLI_VERSION)
WORKFLOWCHECK := $(BIN)/workflowcheck-v0.6.0
export TEMPORAL_CLI

TEST_TIMEOUT ?= 30m
BENCH_PAGES ?= 2000
BENCH_PARALLELISM ?= 8

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Tools, built from Go modules and cached under bin/ by version.

.PHONY: tools
tools: $(TEMPORAL_CLI) $(WORKFLOWCHECK) ## Build the Temporal dev server and linters into bin/.

$(TEMPORAL_CLI): hack/temporal/go.mod hack/temporal/go.sum
	@mkdir -p $(BIN)
	@echo ">> building the Temporal dev server (temporal CLI $(TEMPORAL_CLI_VERSION)); a few minutes the first time"
	cd hack/temporal && $(GO) build -o $@.tmp github.com/temporalio/cli/cmd/temporal && mv $@.tmp $@

$(WORKFLOWCHECK): hack/tools/go.mod hack/tools/go.sum
	@mkdir -p $(BIN)
	cd hack/tools && $(GO) build -o $@ go.temporal.io/sdk/contrib/tools/workflowcheck

##@ Development

.PHONY: build
build: ## Build static binaries (CGO_ENABLED=0) into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: lint
lint: $(WORKFLOWCHECK) ## gofmt, go vet and workflowcheck (workflow determinism).
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(WORKFLOWCHECK) ./internal/temporalbatch/...

.PHONY: test
test: $(TEMPORAL_CLI) build ## Unit and integration tests (starts its own Temporal dev server).
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...

.PHONY: test-unit
test-unit: ## Unit tests only (no servers).
	$(GO) test -count=1 -short ./...

.PHONY: bench
bench: $(TEMPORAL_CLI) ## Orchestrator throughput against a no-orchestration baseline on one dev server.
	$(GO) run ./hack/bench -pages $(BENCH_PAGES) -parallelism $(BENCH_PARALLELISM)

.PHONY: clean
clean: ## Remove built binaries (keeps cached tools).
	rm -f $(BIN)/example-worker $(BIN)/manager
