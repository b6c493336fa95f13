# The two commands of the README: `make run` and `make test`. Both install
# their own prerequisites first (scripts/deps.sh, apt-get on Debian).
GO      ?= go
TOPO    ?= topologies/pipeline.yaml
FUZZTIME ?= 20s

.PHONY: all deps build run test fuzz bench vet clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	$(GO) build -o bin/ztopo ./cmd/ztopo

# Runs a real topology: ventilator -> 4 workers -> sink; it ends by itself.
run: build
	./bin/ztopo up --no-watch $(TOPO)

# The whole test suite, with the race detector, then a short fuzz of the loader.
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./spec

bench: build
	$(GO) run ./bench

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
