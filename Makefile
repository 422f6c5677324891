# trunkd — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
DATA  ?= ./trunkd-data

# Opus needs diago's cgo binding (libopus); nolibopusfile avoids libopusfile.
# Noise cancellation needs libspeexdsp (cgo, build tag with_speexdsp).
export GOFLAGS := -tags=with_opus_c,nolibopusfile,with_speexdsp
# What the tests and the Opus build need from Debian (etcd-server: the
# cluster tests start a 3-member etcd on loopback; baresip-core: the non-Go
# TLS + SRTP peer); `make deps` installs what is missing (with sudo when
# not root). chromium too, for the status page's browser test, which skips
# where it cannot be installed.
DEB_PKGS := sip-tester libopus-dev libspeexdsp-dev pkg-config baresip-core etcd-server
# Tools taken out of a Debian package into bin/tools without installing the
# package (Debian's prometheus would also start a Prometheus server):
# promtool checks the alert rules in docs/monitoring.
TOOLS := $(CURDIR)/bin/tools
export PATH := $(TOOLS):$(PATH)
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z][a-z-]*:.*## /{printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## install the Debian packages the build and tests need, if missing
	@missing=""; \
	  command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	  command -v baresip >/dev/null || missing="$$missing baresip-core"; \
	  command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	  command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	  pkg-config --exists opus 2>/dev/null || missing="$$missing libopus-dev"; \
	  pkg-config --exists speexdsp 2>/dev/null || missing="$$missing libspeexdsp-dev"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null || \
	      { echo "could not install:$$missing (apt-get install $(DEB_PKGS))"; exit 1; }; \
	  fi
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (the status page's browser test)"; export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } || \
	  echo "could not install chromium: the status page's browser test will skip"; }
	@command -v promtool >/dev/null || { \
	  echo "fetching promtool from Debian's prometheus package into bin/tools"; \
	  tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	  { apt-get download prometheus >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && apt-get download prometheus >/dev/null; }; } && \
	  dpkg-deb -x prometheus_*.deb x && mkdir -p $(TOOLS) && cp x/usr/bin/promtool $(TOOLS)/ || \
	  { echo "could not fetch promtool (Debian package prometheus)"; exit 1; }; }

.PHONY: build
build: deps ## build bin/trunkd and bin/trunkctl
	$(GO) build -o $(BIN)/ ./cmd/trunkd ./cmd/trunkctl

.PHONY: run
run: build ## start trunkd on embedded defaults (data in ./trunkd-data)
	@echo "trunkctl is at $(BIN)/trunkctl; trunkd prints how to mint a token and connect."
	@echo "REST face (curl): TRUNKD_HTTP_LISTEN=127.0.0.1:8443 make run, then https://127.0.0.1:8443/openapi.json"
	$(BIN)/trunkd --data $(DATA)

.PHONY: test
test: deps lint ## run every test, with the race detector
	$(GO) test -race -count=1 ./...

.PHONY: cluster
cluster: build ## start a 3-member etcd and 3 trunkd nodes on 127.0.0.2-4 (foreground; Ctrl-C stops)
	BIN=$(BIN) testdata/cluster.sh

.PHONY: cluster-test
cluster-test: deps ## the long cluster suites: kill -9 of etcd's leader and of nodes, partition, compaction (a few minutes)
	$(GO) test -tags cluster -race=false -count=1 -timeout 15m -run '^TestClusterLong' -v ./cmd/trunkd 2>&1 | \
	  grep -E '^(=== RUN|--- |\s+cluster_long_test|PASS|FAIL|ok)'; exit $${PIPESTATUS[0]}

# Dependency direction, arrows pointing in toward trunk. One rule per
# entry: packages:std when they may import only the standard library (of
# the rest of the world):what of this module they may import, where x/...
# is x and everything below it. trunk itself is std-only by
# trunk/imports_test.go. The faces (rpc/...), the store and the SIP plane
# never import each other; cmd/ wires them.
IMPORT_RULES := \
  trunk/secretfile/...:std: \
  trunk/porttest/...:std: \
  trunk/certs/...:std:trunk/secretfile \
  trunk/control/...:std:trunk,trunk/control/... \
  rpc/...:-:trunk,trunk/control/...,trunk/secretfile,trunk/certs,rpc/... \
  rpc/auth/...:-:trunk \
  rpc/api/...:-:trunk,trunk/control,rpc/auth \
  rpc/rest/...:-:trunk,trunk/control,rpc/api,rpc/auth,rpc/rest/... \
  rpc/status/...:-:trunk,trunk/control,trunk/control/...,rpc/auth \
  store/record/...:-:trunk \
  store/...:-:trunk,trunk/control,trunk/secretfile,trunk/porttest,store/... \
  media/...:-:trunk,trunk/secretfile,trunk/certs,trunk/porttest,media/...

.PHONY: lint
lint: ## gofmt, go vet, staticcheck, dependency direction
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@mod=$$($(GO) list -m); fail=0; \
	  for rule in $(IMPORT_RULES); do \
	    IFS=: read -r pkgs std allowed <<< "$$rule"; \
	    ls $${pkgs%/...}/*.go >/dev/null 2>&1 || continue; \
	    while read -r p imps; do \
	      for imp in $$imps; do \
	        case $$imp in \
	          $$mod/*) ok=; for a in $${allowed//,/ }; do \
	              case $$a in *...) case $$imp/ in $$mod/$${a%/...}/*) ok=1;; esac;; *) [ "$$imp" = "$$mod/$$a" ] && ok=1;; esac; done; \
	            [ -n "$$ok" ] || { echo "$$p may import only $${allowed:-nothing} of this module; it imports $$imp"; fail=1; };; \
	          *.*/*) if [ "$$std" = std ]; then echo "$$p may import only the standard library (and $${allowed:-nothing} of this module); it imports $$imp"; fail=1; fi;; \
	        esac; \
	      done; \
	    done < <($(GO) list -f '{{.ImportPath}} {{join .Imports " "}}' ./$$pkgs); \
	  done; exit $$fail

.PHONY: bench-ai
bench-ai: deps ## the AI bridge's benchmarks alone: latency, 1/50/300 bridged calls beside PLAY, barge-in, connect while ringing, denoise (a few minutes)
	TRUNKD_BENCH_AI_CALLS=$${TRUNKD_BENCH_AI_CALLS:-1,50,300} $(GO) test -run '^$$' -bench 'BridgedCalls|AgentConnectWhileRinging' -benchtime 1x -timeout 30m ./media/sipplane
	$(GO) test -run '^$$' -bench . -benchtime 1x ./media/bridge
	$(GO) test -run '^$$' -bench . ./media/bridge/denoise

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@set -e; for t in rpc:FuzzDecodeEnvelope rpc:FuzzDecodeTrunkDTO rpc:FuzzReadBackup rpc:FuzzListFrame \
	  rpc/auth:FuzzAuthenticate store:FuzzDecodeRecord store/record:FuzzParseMatchesStd \
	  media/sipplane:FuzzParseOffer media/sipplane:FuzzInboundSIP media/rtpstats:FuzzRTCP media/rtpstats:FuzzPacket \
	  media/audio:FuzzDecode media/bridge/ws:FuzzAgentMessage media/bridge/quic:FuzzAgentFrame; do \
	  GO=$(GO) .ci/fuzz-one ./$${t%%:*} $${t#*:}; done

CRASH_ROUNDS ?= 60
.PHONY: crash
crash: deps ## kill -9 under concurrent writes CRASH_ROUNDS times (default 60), disk full, foreign data files
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	  CRASH_ROUNDS=$(CRASH_ROUNDS) $(GO) test -tags crash -race=false -count=1 -timeout 0 -run '^TestCrash' -v ./cmd/trunkd 2>&1 | tee "$$log"; \
	  rc=$${PIPESTATUS[0]}; \
	  kill9=$$(grep -o 'SUMMARY: .*' "$$log" | sed 's/^SUMMARY: //'); \
	  failed=$$(grep -oE -- '--- FAIL: [^ ]+' "$$log" | sed 's/^--- FAIL: //' | tr '\n' ' '); \
	  if [ $$rc -eq 0 ]; then \
	    echo "VERDICT crash: PASS - kill -9: $${kill9:-?}; disk full: ERR_UNAVAILABLE, reads kept, nothing lost; foreign data files refused and untouched"; \
	  else echo "VERDICT crash: FAIL - $${failed:-go test exited $$rc}- kill -9: $${kill9:-did not finish}"; fi; \
	  exit $$rc

.PHONY: soak
soak: deps ## mixed RPC and SIP load for SOAK_DURATION (default 10m); goroutines and heap must return to baseline
	SOAK_DURATION=$${SOAK_DURATION:-10m} $(GO) test -tags soak -count=1 -timeout 0 -run '^TestSoak$$' -v ./cmd/trunkd 2>&1 | \
	  grep -E '^(=== RUN|--- |\s+soak_test|VERDICT|PASS|FAIL|ok)'; exit $${PIPESTATUS[0]}

.PHONY: bench
bench: export TRUNKD_BENCH_AI_CALLS ?= 1,50,300
bench: deps bench-deps ## every benchmark, medians and side-by-side ratios; writes docs/benchmarks.md (about 30 min)
	$(GO) build -o $(BIN)/ ./cmd/trunkd ./cmd/trunkctl
	$(GO) build -o $(BIN)/bareuas ./bench/sip/bareuas
	$(GO) run ./bench/all $(BENCH_FLAGS)

.PHONY: bench-go
bench-go: ## only the Go benchmarks, once each
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-deps
bench-deps: ## install what the comparisons run against: kamailio and etcd (Debian), if missing
	@missing=""; command -v kamailio >/dev/null || missing="$$missing kamailio"; \
	  command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	  if [ -n "$$missing" ]; then echo "installing:$$missing"; export DEBIAN_FRONTEND=noninteractive; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null || \
	    echo "could not install:$$missing; those comparisons will be missing"; fi

.PHONY: bench-sip
bench-sip: deps bench-deps ## only the SIP comparisons with sipp: trunkd vs a bare diago server vs Kamailio
	$(GO) build -o $(BIN)/ ./cmd/trunkd ./cmd/trunkctl
	$(GO) build -o $(BIN)/bareuas ./bench/sip/bareuas
	$(GO) run ./bench/sip $(SIPBENCH_FLAGS)

.PHONY: bench-etcd
bench-etcd: ## etcd on loopback vs trunkd, measured alike (installs etcd-server if root)
	@command -v etcd >/dev/null || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; } || true
	bench/etcd/run.sh

.PHONY: clean
clean: ## remove build output (not the data dir)
	rm -rf $(BIN)
