# computeha — high availability for OpenStack compute hosts and their VMs.
# `make help` lists the targets.

GO            ?= go
BIN           := bin
TOOLS         := $(CURDIR)/.tools
GOLANGCI_VER  := v2.6.2
GOLANGCI      := $(TOOLS)/golangci-lint-$(GOLANGCI_VER)
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X github.com/computeha/computeha/internal/cli.Version=$(VERSION)
# Heavy suites run against real parts (BMC simulators, libvirtd, Pacemaker)
# and need root: the harness under test/harness starts and stops them.
INTEGRATION_TAGS := integration
# Every build tag at once: no file is built only without a tag, so vet and
# the linters see every file in one pass.
ALL_TAGS      := integration,packaging,lab,openstack,e2e,mariadb

# go test's events go through testsummary: the output as it comes, then the
# end of each failed test's output again, where a log is read from.
TESTSUMMARY   := $(GO) run ./test/harness/testsummary

SHELL         := /bin/bash
.SHELLFLAGS   := -eu -o pipefail -c
.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/computeha and a symlink per agent (bin/fence_ipmi, bin/resource.d/computeha/<ocf agent>)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/computeha ./cmd/computeha
	@$(BIN)/computeha agents | while read -r kind name; do \
	  case $$kind in \
	    ocf) mkdir -p $(BIN)/resource.d/computeha && ln -sfn ../../computeha $(BIN)/resource.d/computeha/$$name ;; \
	    *) ln -sfn computeha $(BIN)/$$name ;; \
	  esac; \
	done

.PHONY: deps
deps: ## Install the Debian packages the tests need, Nova's included (root; skips what is there)
	test/harness/deps.sh
	test/nova/nova install

$(GOLANGCI):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VER)
	mv $(TOOLS)/golangci-lint $(GOLANGCI)

.PHONY: lint
lint: $(GOLANGCI) ## gofmt, go vet and golangci-lint (pinned)
	@out=$$(gofmt -l . 2>&1); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags $(ALL_TAGS) ./...
	$(GOLANGCI) run --build-tags $(ALL_TAGS) ./...

.PHONY: unit
unit: ## Unit tests (no root, no real parts), fuzz seeds included, under the race detector
	CGO_ENABLED=1 $(GO) test -race -json -count=1 ./... | $(TESTSUMMARY) -quiet

.PHONY: rules
rules: ## The shipped Prometheus alert rules: promtool check, and their unit tests (test/prometheus)
	promtool check rules packaging/prometheus/*.yml
	promtool test rules test/prometheus/*.test.yml

.PHONY: integration
integration: build ## Suites against real ipmi_sim BMCs, libvirtd and Pacemaker (root)
	$(GO) test -json -count=1 -tags $(INTEGRATION_TAGS) -timeout 20m -v -run '$(RUN)' ./test/... | $(TESTSUMMARY)

.PHONY: metadata
metadata: ## Regenerate ocf-metadata/ from the agents' parameter structs
	$(GO) run ./cmd/computeha metadata write ocf-metadata

.PHONY: verify
verify: ## Fail if metadata, go.mod or formatting differ from what tools generate
	$(GO) run ./cmd/computeha metadata check ocf-metadata
	@out=$$(gofmt -l . 2>&1); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@# No -e: a module the proxy refuses must fail here by name, not turn
	@# into a silent difference in go.sum that depends on the machine.
	@$(GO) mod tidy -diff || { echo "verify: go.mod/go.sum are not what 'go mod tidy' makes (diff above), or a module could not be downloaded (error above)" >&2; exit 1; }

.PHONY: fuzz
fuzz: ## Run every fuzz target (func Fuzz* in a _test.go) for FUZZTIME each (default 30s)
	@set -e; for file in $$(grep -rl '^func Fuzz' --include='*_test.go' . | sort); do \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
	    echo "== $$name ($$(dirname $$file))"; \
	    $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $${FUZZTIME:-30s} $$(dirname $$file)/; \
	  done; \
	done

.PHONY: bench
bench: build ## Benchmarks against real parts; print figures and check targets (root)
	$(GO) run ./test/bench/fencestatus -bin $(BIN)
	$(GO) run ./test/bench/watch -bin $(BIN)
	$(GO) run ./test/bench/health -bin $(BIN) -runs $${HEALTH_RUNS:-2} -fence-runs $${HEALTH_FENCE_RUNS:-2}
	$(GO) run ./test/bench/report -bin $(BIN)

.PHONY: bench-recovery
bench-recovery: build ## Power-loss recovery of 10, 50 and 100 VMs on lab + real Nova against Nova alone, the fencing-to-request delay and evacd's RSS, checked against targets (root)
	$(GO) run ./test/bench/recovery -bin $(BIN) -sizes $${SIZES:-10,50,100} -runs $${RUNS:-3,2,1}

.PHONY: bench-guests
bench-guests: build ## A real guest's qemu killed KILLS times (default 5) on lab + real Nova: time to the same VM running again and ACTIVE (target 10 s median), the daemon's decision; then BURST (20) guests crashed together, all running again, against Nova alone hard-rebooting them at once (target ratio 1.25); the instance monitor's peak RSS (target 20 MB) (root)
	$(GO) run ./test/bench/guests -bin $(BIN) -kills $${KILLS:-5} -burst $${BURST:-20}

.PHONY: bench-scale
bench-scale: build ## 24 computes, 1000 VMs, 2 computes with 200 HA VMs powered off together: times, evacd's RSS and CPU, every part's CPU (root)
	$(GO) run ./test/bench/scale -bin $(BIN) -computes $${COMPUTES:-24} -vms $${VMS:-1000} -failed $${FAILED:-2} -ha $${HA:-100}

.PHONY: bench-gossip
bench-gossip: ## Gossip membership (memberlist, encrypted) of 100, 500 and 1000 members in one process on loopback, joined in waves of 50: traffic per member (target: flat), kill detection, false positives with 5 % loss (target 0); INTERVAL=3s for 1000 members on 2 cores
	$(GO) run ./test/bench/gossip -sizes $${SIZES:-100,500,1000} -interval $${INTERVAL:-1s} -wave $${WAVE:-50} -kills $${KILLS:-10} -loss $${LOSS:-0.05} -lossy $${LOSSY:-10m}

.PHONY: bench-metrics
bench-metrics: ## What the metrics add to the daemon with 1000 VMs tracked: RSS (target 2 MB) and scrape time (target 20 ms)
	$(GO) run ./test/bench/metrics -vms $${VMS:-1000}

.PHONY: test
test: deps verify lint unit rules bench integration lab-test openstack mariadb-test e2e packaging-test ## Everything CI runs: deps, verify, lint, unit, alert rules, bench, integration, lab, Nova, MariaDB, end to end, packages

.PHONY: packages
packages: build ## Build the .deb and .rpm packages into dist/
	$(GO) run ./cmd/mkpackages -bin $(BIN)/computeha -assets packaging -out dist

.PHONY: packaging-test
packaging-test: ## Build the packages and prove them in a clean Debian 12 root (root)
	$(GO) test -json -count=1 -tags packaging -timeout 30m -v ./test/packaging/ | $(TESTSUMMARY)

.PHONY: lab-test
lab-test: build ## Pacemaker lab (root): 3 controllers + 2 remote computes; power loss and mgmt cut are fenced
	LAB_BIN=$(CURDIR)/$(BIN) $(GO) test -json -count=1 -tags lab -timeout 15m -v ./test/lab/ | $(TESTSUMMARY)

.PHONY: openstack
openstack: build ## Suites against a real Nova control plane (root; starts and stops it)
	$(GO) test -json -count=1 -tags openstack -timeout 25m -v -run '$(RUN)' ./test/nova/... | $(TESTSUMMARY)
	$(GO) test -json -count=1 -tags "integration openstack" -timeout 25m -v -run 'TestNovaSide' ./test/integration/ | $(TESTSUMMARY)

.PHONY: mariadb-test
mariadb-test: ## The history store's suite on a real MariaDB server (root; starts and stops its own)
	$(GO) test -json -count=1 -tags mariadb -timeout 10m -v -run MariaDB ./internal/history/ | $(TESTSUMMARY)

.PHONY: demo
demo: deps build ## The main job (root): lab + Nova with real guests, power a compute off, watch it fenced and its VMs evacuated; then a VM's qemu killed and restarted (DEMO_FLAGS=-fake: no guests)
	$(GO) run ./test/e2e/demo -bin $(BIN) $(DEMO_FLAGS)

.PHONY: demo-down
demo-down: ## Stop what make demo DEMO_FLAGS=-keep left running
	-test/nova/nova down --dir /tmp/computeha-nova-lab
	-test/lab/lab down --dir /tmp/computeha-demo/lab
	-ip netns del chalab-cloud 2>/dev/null

.PHONY: quickstart
quickstart: ## Quick start (root): fence a simulated BMC off and on with fence_ipmi
	test/demo/quickstart.sh

.PHONY: e2e
e2e: build ## End-to-end suite (root) on lab + real Nova: power loss and the recovery faults (TestPowerLoss), dead vs isolated hosts (TestHealth), real qemu guests (TestGuests)
	LAB_BIN=$(CURDIR)/$(BIN) $(GO) test -json -count=1 -tags e2e -timeout 90m -v -run 'TestPowerLoss|TestHealth|TestGuests' ./test/e2e/ | $(TESTSUMMARY)

.PHONY: e2e-guests
e2e-guests: build ## Real qemu guests under Nova's libvirt driver on the lab's computes (TestGuests; root)
	LAB_BIN=$(CURDIR)/$(BIN) $(GO) test -json -count=1 -tags e2e -timeout 30m -v -run 'TestGuests' ./test/e2e/ | $(TESTSUMMARY)

.PHONY: e2e-health
e2e-health: build ## Dead vs isolated hosts on lab + real Nova, with hostcheck and the gate, then a bounded soak (TestHealth; root)
	LAB_BIN=$(CURDIR)/$(BIN) $(GO) test -json -count=1 -tags e2e -timeout 45m -v -run 'TestHealth' ./test/e2e/ | $(TESTSUMMARY)

.PHONY: soak
soak: build ## Randomized fault soak on lab + real Nova, invariants checked after every round (SOAK_ROUNDS, default 100, within SOAK_BUDGET, default 35m, at most 170m; SOAK_SEED replays a run; root)
	SOAK_ROUNDS=$${SOAK_ROUNDS:-100} SOAK_BUDGET=$${SOAK_BUDGET:-35m} LAB_BIN=$(CURDIR)/$(BIN) $(GO) test -json -count=1 -tags e2e -timeout 200m -v -run 'TestSoak' ./test/e2e/ | $(TESTSUMMARY)

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)
