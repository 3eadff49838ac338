# Temporal Batch. `make help` lists the targets.
SHELL := /usr/bin/env bash -o pipefail
.DEFAULT_GOAL := help

GO       ?= go
BIN      := $(CURDIR)/bin
export GOFLAGS ?= -buildvcs=false

TEMPORAL_CLI_VERSION := v1.5.1
TEMPORAL_CLI := $(BIN)/temporal-$(TEMPORAL_CLI_VERSION)
WORKFLOWCHECK := $(BIN)/workflowcheck-v0.6.0
CONTROLLER_GEN := $(BIN)/controller-gen-v0.23.0
KUBE_VERSION := v1.37.2
ETCD_VERSION := v3.6.8
# envtest's binaries (kube-apiserver, etcd, kubectl), built from Go modules.
KUBEBUILDER_ASSETS := $(BIN)/k8s-$(KUBE_VERSION)
ENVTEST_BINS := $(KUBEBUILDER_ASSETS)/kube-apiserver $(KUBEBUILDER_ASSETS)/etcd $(KUBEBUILDER_ASSETS)/kubectl
# What the Kubernetes release build stamps in: clients such as Kueue parse the
# server's version, which is v0.0.0-master+$Format:%H$ without it.
KUBE_LDFLAGS := $(foreach pkg,k8s.io/client-go/pkg/version k8s.io/component-base/version,\
	-X $(pkg).gitVersion=$(KUBE_VERSION) -X $(pkg).gitMajor=1 -X $(pkg).gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION))) -X $(pkg).gitTreeState=clean)
HELM_VERSION := v3.22.0
HELM := $(BIN)/helm-$(HELM_VERSION)
# The Kueue manager and, next to it, the CRDs of the same version; the Kueue
# admission tests run against them and skip while they are missing.
KUEUE_VERSION := v0.17.0
KUEUE := $(BIN)/kueue-$(KUEUE_VERSION)
KUEUE_CRDS := $(KUEUE)-crds
# What helm's own release build stamps in: its version, and the Kubernetes
# version that `helm template` assumes without a cluster.
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(word 2,$(subst ., ,$(KUBE_VERSION)))
CHART := charts/temporal-batch
export TEMPORAL_CLI KUBEBUILDER_ASSETS HELM

TEST_TIMEOUT ?= 30m
# 0: the bench's default per cell (500 no-op pages, 250 timed pages; 100000 with -state-size).
BENCH_PAGES ?= 0
BENCH_PARALLELISM ?= 8,50
BENCH_ROUNDS ?= 3
# More flags for hack/bench, e.g. BENCH_FLAGS="-markdown -page-time 0,100ms -variants classic,lookahead,cursors",
# or BENCH_FLAGS=-state-size for one long job's carried state per run.
BENCH_FLAGS ?=
# Numbers of running jobs for hack/benchcontroller, e.g. BENCH_CONTROLLER_JOBS=100,500,1000,
# and more flags, e.g. BENCH_CONTROLLER_FLAGS="-measure 3m -parallelism 2".
BENCH_CONTROLLER_JOBS ?= 100
BENCH_CONTROLLER_FLAGS ?=
# More flags for hack/demo and hack/dev, e.g. DEMO_FLAGS="-items 200000", DEV_FLAGS="-fresh".
DEMO_FLAGS ?=
DEV_FLAGS ?=

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Tools, built from Go modules and cached under bin/ by version.

TOOLS := $(TEMPORAL_CLI) $(WORKFLOWCHECK) $(CONTROLLER_GEN) $(ENVTEST_BINS) $(HELM)

.PHONY: tools
tools: $(TOOLS) ## Build the Temporal dev server, kube-apiserver, etcd, kubectl, helm and linters into bin/.

.PHONY: tool-paths
tool-paths: ## Print the paths of the cached tools, one a line (.ci/run times each build).
	@printf '%s\n' $(TOOLS)

$(TEMPORAL_CLI): hack/temporal/go.mod hack/temporal/go.sum
	@mkdir -p $(BIN)
	@echo ">> building the Temporal dev server (temporal CLI $(TEMPORAL_CLI_VERSION)); a few minutes the first time"
	cd hack/temporal && $(GO) build -o $@.tmp github.com/temporalio/cli/cmd/temporal && mv $@.tmp $@

$(WORKFLOWCHECK): hack/tools/go.mod hack/tools/go.sum
	@mkdir -p $(BIN)
	cd hack/tools && $(GO) build -o $@ go.temporal.io/sdk/contrib/tools/workflowcheck

$(CONTROLLER_GEN): hack/tools/go.mod hack/tools/go.sum
	@mkdir -p $(BIN)
	cd hack/tools && $(GO) build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(KUBEBUILDER_ASSETS)/kube-apiserver: hack/kube/go.mod hack/kube/go.sum
	@mkdir -p $(KUBEBUILDER_ASSETS)
	@echo ">> building kube-apiserver $(KUBE_VERSION); several minutes the first time"
	cd hack/kube && $(GO) build -ldflags "$(KUBE_LDFLAGS)" -o $@.tmp k8s.io/kubernetes/cmd/kube-apiserver && mv $@.tmp $@

$(KUBEBUILDER_ASSETS)/kubectl: hack/kube/go.mod hack/kube/go.sum
	@mkdir -p $(KUBEBUILDER_ASSETS)
	cd hack/kube && $(GO) build -ldflags "$(KUBE_LDFLAGS)" -o $@.tmp k8s.io/kubernetes/cmd/kubectl && mv $@.tmp $@

$(KUBEBUILDER_ASSETS)/etcd: hack/etcd/go.mod hack/etcd/go.sum
	@mkdir -p $(KUBEBUILDER_ASSETS)
	cd hack/etcd && $(GO) build -o $@.tmp go.etcd.io/etcd/server/v3 && mv $@.tmp $@

$(HELM): hack/helm/go.mod hack/helm/go.sum
	@mkdir -p $(BIN)
	@echo ">> building helm $(HELM_VERSION); a few minutes the first time"
	cd hack/helm && $(GO) build -ldflags "$(HELM_LDFLAGS)" -o $@.tmp helm.sh/helm/v3/cmd/helm && mv $@.tmp $@

.PHONY: kueue
kueue: $(KUEUE) ## Build the Kueue manager into bin/ with its CRDs (for the Kueue admission tests).

# The CRDs come from the same module version as the binary; they are copied
# first, so that a binary in bin/ always has its CRDs next to it.
$(KUEUE): hack/kueue/go.mod hack/kueue/go.sum
	@mkdir -p $(BIN)
	@echo ">> building the Kueue manager $(KUEUE_VERSION); a few minutes the first time"
	rm -rf $(KUEUE_CRDS).tmp && mkdir -p $(KUEUE_CRDS).tmp
	cd hack/kueue && cp "$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/kueue)"/config/components/crd/bases/*.yaml $(KUEUE_CRDS).tmp/
	chmod u+w $(KUEUE_CRDS).tmp/*.yaml && rm -rf $(KUEUE_CRDS) && mv $(KUEUE_CRDS).tmp $(KUEUE_CRDS)
	cd hack/kueue && $(GO) build -ldflags "-X sigs.k8s.io/kueue/pkg/version.GitVersion=$(KUEUE_VERSION)" -o $@.tmp sigs.k8s.io/kueue/cmd/kueue && mv $@.tmp $@

##@ Generated code and manifests

CRD_FILE := config/crd/bases/batch.temporalbatch.io_batchjobs.yaml

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Write the CRD and RBAC from the Go markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:generateEmbeddedObjectMeta=true paths="./api/...;./internal/controller/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(GO) run ./hack/trimcrd $(CRD_FILE)

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Write the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/..."

.PHONY: chart
chart: manifests ## Write the chart's CRD and RBAC rules from config/.
	$(GO) run ./hack/chartsync

.PHONY: verify
verify: manifests generate chart ## Fail when generated files (config, api, the chart) are stale.
	@git diff --exit-code -- config api charts || { echo "generated files are stale: run 'make manifests generate chart' and commit the result"; exit 1; }
	@test -z "$$(git status --porcelain -- config api charts)" || { git status --porcelain -- config api charts; echo "generated files are not committed"; exit 1; }

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

.PHONY: chart-lint
chart-lint: $(HELM) ## helm lint --strict the chart with its defaults and every value set in ci/.
	$(HELM) lint --strict $(CHART)
	@for f in $(CHART)/ci/*-values.yaml; do echo "$(HELM) lint --strict $(CHART) -f $$f"; $(HELM) lint --strict --quiet $(CHART) -f $$f || exit 1; done

.PHONY: chart-package
chart-package: $(HELM) ## Package the chart into dist/.
	$(HELM) package $(CHART) --destination dist

.PHONY: test
test: $(TEMPORAL_CLI) $(ENVTEST_BINS) $(HELM) build test-typescript ## Unit, integration, envtest, chart and end-to-end suites (they start their own servers), and the TypeScript worker's tests (node >= 20).
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...

.PHONY: test-e2e
test-e2e: $(TEMPORAL_CLI) $(ENVTEST_BINS) build typescript-worker ## End-to-end suite: jobs on a local control plane with the real manager and worker processes, faults included.
	$(GO) test ./test/e2e/ -count=1 -timeout $(TEST_TIMEOUT) -v -ginkgo.v

.PHONY: test-kueue
test-kueue: $(KUEUE) $(ENVTEST_BINS) ## The Kueue admission tests against the real Kueue manager (builds it the first time, ~19 min cold); make test skips them while bin/kueue-* is missing.
	$(GO) test -count=1 -timeout 10m ./internal/kueue/ ./internal/kueuetest/

.PHONY: test-unit
test-unit: ## Unit tests only (no servers).
	$(GO) test -count=1 -short ./...

TS_WORKER := workers/typescript

.PHONY: typescript-worker
typescript-worker: $(TS_WORKER)/node_modules/.package-lock.json ## Build the TypeScript worker into workers/typescript/dist (node >= 20; npm ci only when the lockfile changed).
	cd $(TS_WORKER) && npm run build

.PHONY: test-typescript
test-typescript: typescript-worker ## The TypeScript worker package's tests.
	cd $(TS_WORKER) && npm test

# npm ci writes node_modules/.package-lock.json; while it is newer than the
# lockfile, the installed modules are the locked ones.
$(TS_WORKER)/node_modules/.package-lock.json: $(TS_WORKER)/package-lock.json $(TS_WORKER)/package.json
	cd $(TS_WORKER) && npm ci --no-audit --no-fund

.PHONY: bench
bench: $(TEMPORAL_CLI) ## Orchestrator variants' throughput against a no-orchestration baseline on one dev server.
	$(GO) run ./hack/bench -pages $(BENCH_PAGES) -parallelism $(BENCH_PARALLELISM) -rounds $(BENCH_ROUNDS) $(BENCH_FLAGS)

.PHONY: bench-controller
bench-controller: $(TEMPORAL_CLI) $(ENVTEST_BINS) build ## The manager with N running jobs on the local environment: start time, RSS, CPU, writes, status lag, edit latency.
	$(GO) run ./hack/benchcontroller -jobs $(BENCH_CONTROLLER_JOBS) $(BENCH_CONTROLLER_FLAGS)

.PHONY: demo
demo: $(TEMPORAL_CLI) $(ENVTEST_BINS) build ## Run a sample job end to end on a local control plane, with live progress.
	$(GO) run ./hack/demo $(DEMO_FLAGS)

.PHONY: dev
dev: $(TEMPORAL_CLI) $(ENVTEST_BINS) build ## Run the operator locally (kube-apiserver, Temporal, manager, workers) until Ctrl-C.
	$(GO) run ./hack/dev $(DEV_FLAGS)

.PHONY: clean
clean: ## Remove built binaries (keeps cached tools).
	rm -f $(addprefix $(BIN)/,$(notdir $(wildcard cmd/*)))
