# flymq — build, run and test. `make help` lists the targets.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# FUZZTIME is per fuzz target, as an execution count: a duration
# (-fuzztime 10s) trips a race in Go 1.26's fuzz coordinator that fails the
# target with "context deadline exceeded" and no crasher (go.dev/issue/75804).
# `make test` uses a shorter pass.
FUZZTIME ?= 50000x
PKGS     ?= ./...

.PHONY: help build run test test-race fuzz bench bench-compare lint vet clean FORCE

help:
	@echo "build      bin/flymq and bin/flymq-cli"
	@echo "run        development broker: configs/dev.json, data in ./data, key generated once"
	@echo "test       lint (gofmt, go vet), go test -race, a short fuzz pass (what CI runs)"
	@echo "test-race  go test -race ./..."
	@echo "fuzz       every fuzz target for FUZZTIME ($(FUZZTIME)) each"
	@echo "bench      Go benchmarks, then the broker end to end with encryption on and off"
	@echo "bench-compare  flymq against NATS JetStream, the performance targets as a table"
	@echo "lint       gofmt -l and go vet"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/flymq ./cmd/flymq
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/flymq-cli ./cmd/flymq-cli

run:
	$(GO) run ./cmd/flymq --config configs/dev.json --dev

test: lint test-race
	$(MAKE) fuzz FUZZTIME=3000x

test-race:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# Lists the fuzz targets of every package (go test -list) and runs each
# one on its own, as go test -fuzz takes one target in one package.
fuzz:
	@set -e; list=$$($(GO) test -list '^Fuzz' $(PKGS)); \
	echo "$$list" | awk ' \
		/^Fuzz/ { names = names " " $$1; next } \
		/^ok/ { if (names != "") print $$2 names; names = "" }' | \
	while read -r pkg targets; do \
		for t in $$targets; do \
			echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done

# bench: the Go benchmarks of the hot paths, then the broker end to end
# (8 connections x 32 pipelined 1 KiB produces, fetched back and verified)
# with encryption on and off. bench-compare runs the full comparison with
# NATS JetStream; give it an otherwise idle machine (about 15 minutes).
BENCH_DURATION ?= 10s

bench: bin/flymq-bench build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	bin/flymq-bench run --target flymq --spawn --flymq-bin bin/flymq --encryption on --duration $(BENCH_DURATION)
	bin/flymq-bench run --target flymq --spawn --flymq-bin bin/flymq --encryption off --duration $(BENCH_DURATION)

bench-compare: bin/flymq-bench build
	bin/flymq-bench compare --flymq-bin bin/flymq --repeats 3 --duration $(BENCH_DURATION) --out bench-results.jsonl | tee bench-report.md

bin/flymq-bench: FORCE
	$(GO) build -o bin/flymq-bench ./cmd/flymq-bench

FORCE:

lint: vet
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
