# The two commands of the README: `make run` and `make test`. Both install
# their own prerequisites first (scripts/deps.sh, apt-get on Debian).
GO      ?= go
TOPO    ?= topologies/pipeline.yaml
PREFIX  ?= /usr/local
# The fuzz budget is a count of inputs, not a duration: with a duration, Go
# 1.26's fuzz coordinator can report "context deadline exceeded" as a failure
# when its deadline falls while a worker is busy (go.dev/issue/75804, fixed in
# Go 1.27). Minimizing an interesting input is bounded on its own.
FUZZTIME ?= 200000x
FUZZMINTIME ?= 10s

.PHONY: all deps deps-test ui-screenshot build install run test fuzz bench bench-smoke vet clean wasm-examples image-check

all: build wasm-examples

deps:
	@./scripts/deps.sh

# What only the tests need on top (Chromium for the --ui page's browser tests).
deps-test:
	@./scripts/deps.sh test

# A cold build compiles libzmq's Go binding and every dependency with cgo:
# minutes on a small machine, silent while it lasts; say so first.
build: deps
	@[ -x bin/ztopo ] || echo "building bin/ztopo: the first build compiles every dependency and takes a few minutes..." >&2
	$(GO) build -o bin/ztopo ./cmd/ztopo

# The example WebAssembly handler, with the Go toolchain alone: a WASI
# preview 1 reactor (the first build compiles Go's standard library for
# wasip1, about a minute). docs/wasm.md says how to run it.
wasm-examples:
	@mkdir -p bin
	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build -buildmode=c-shared -o bin/upper.wasm ./wasm/examples/upper

# Copies the binary to $(PREFIX)/bin (default /usr/local/bin; DESTDIR for packaging).
install: build
	install -D -m 0755 bin/ztopo $(DESTDIR)$(PREFIX)/bin/ztopo

# Runs a real topology: ventilator -> 4 workers -> sink; it ends by itself.
run: build
	./bin/ztopo up --no-watch $(TOPO)

# The whole test suite, with the race detector, then a short fuzz of the loader
# and of the CURVE certificate parser.
test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	# The sockets, nodes and engine again on pebbe's own calls: the fallback
	# that a pebbe release with another socket layout would get.
	$(GO) test -count=1 -timeout 10m -tags ztopo_slowpath ./internal/zbatch ./runtime/zsock ./runtime/node ./runtime/engine
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) ./spec
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) ./internal/curvecert
	$(MAKE) --no-print-directory bench-smoke

# docs/ui.png, the picture of the --ui page in the README, taken by the
# browser test in headless Chromium.
ui-screenshot: deps-test
	ZTOPO_UI_SCREENSHOT=$(CURDIR)/docs/ui.png $(GO) test -count=1 -run '^TestUIInBrowser$$' ./cmd/ztopo

bench: build
	$(GO) run ./bench

# The speed effect of a change before it lands: the ztopo side of each
# scenario, built from REF and from the working tree, run alternately;
# prints new/ref. make bench-compare REF=main ONLY='pipeline|fanout' ROUNDS=5
ROUNDS ?= 5
ONLY   ?=
bench-compare: deps
	@test -n "$(REF)" || { echo "usage: make bench-compare REF=<git revision> [ONLY=regexp] [ROUNDS=n]" >&2; exit 2; }
	GO=$(GO) ./scripts/bench-compare.sh '$(REF)' -rounds $(ROUNDS) -only '$(ONLY)'

# The whole bench suite once, on tiny counts: it fails when a run of any
# implementation breaks or moves a wrong number of messages, and asserts no
# speed (the figures of so short a run mean nothing). About 25 s.
bench-smoke: deps
	@mkdir -p bin
	$(GO) run ./bench -quick -rounds 1 -json bin/bench-smoke.json >/dev/null

# The Dockerfile's image built and run without a Docker engine (none runs
# on our machines): debootstrap roots stand in for its base images, its own
# RUN/COPY lines build in them under chroot, then the image's ztopo runs a
# topology (kube/chrootbuild). Root, a Debian mirror and the Go module proxy;
# minutes, so not part of `make test`.
image-check:
	@command -v debootstrap >/dev/null || { echo "image-check needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }
	$(GO) run ./kube/chrootbuild

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
