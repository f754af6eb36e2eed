# The boring dev loop. `make test` is the README's test command and what
# .ci/run runs.
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 30s

# Build and test with the toolchain go.mod pins (the go command fetches it
# from the module proxy), even on machines whose go env says
# GOTOOLCHAIN=local, which would ignore go.mod's toolchain line.
GOTOOLCHAIN ?= auto
export GOTOOLCHAIN

.PHONY: run build test tools lint bench bench-micro fuzz vulncheck vulndb-update container-test screenshots

run:
	$(GO) run ./cmd/fednode

# The version `fednode --version` prints, stamped by make build and the
# container image (the Dockerfile's VERSION build argument).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS = -s -w -X github.com/fednode/fednode/internal/buildinfo.version=$(VERSION)

# The binaries as the container image builds them.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='$(LDFLAGS)' -o bin/ ./cmd/...

# Unit, integration, end-to-end and the fuzz targets' seed corpora, with the
# race detector, against real Redis and Vault servers the tests start.
test: tools
	$(GO) test -race -count=1 ./...

# What the tests need on the machine: redis-server, promtool (Debian's
# prometheus package) and Chromium (the web client's browser tests), installed
# with apt when missing and we are root, and a Vault binary built from the
# module proxy.
tools:
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null; \
		else echo "install redis-server and redis-tools (apt-get install redis-server)"; exit 1; fi; }
	@command -v promtool >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
		else echo "install promtool (apt-get install prometheus)"; exit 1; fi; }
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "install chromium (apt-get install chromium)"; exit 1; fi; }
	@bash scripts/vault-build

# The web client's screenshots in docs/screenshots, taken by its browser test.
screenshots: tools
	FEDNODE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test ./daemon -run '^TestWebUI' -count=1

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...
	@bash scripts/vulncheck

# Known vulnerabilities, scanned offline: a database built from the pinned
# golang.org/x/vulndb (scripts/vulndb-version, cached outside the work
# tree), a self-test that must find the fixture's vulnerability, then the
# source and the release binaries. Fails on any vulnerability the code
# reaches.
vulncheck:
	@bash scripts/vulncheck

# Pin the newest vulnerability database the module proxy serves, and scan.
vulndb-update:
	@bash scripts/vulndb-update

# Every goal of docs/PERFORMANCE.md, measured once from outside (the real
# binary in its own process), each beside its baseline in the same run,
# printed with its ratio and the machine's load.
bench: tools
	$(GO) test ./bench -run '^$$' -bench Goal -benchtime 1x -timeout 60m

# Every micro-benchmark of every package.
bench-micro: tools
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

# Each fuzz target for FUZZTIME (go test runs one -fuzz target at a time).
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | while read f; do \
		dir=$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
			echo "== $$dir $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$dir || exit 1; \
		done; \
	done

# The container image and the compose stack, where a Docker engine runs (never
# part of make test or .ci/run): builds the image, starts it on a fresh named
# volume, waits for healthy, stops it with SIGTERM and wants exit code 0; and
# docker compose config -q on docker-compose.federation.yml. Fails with "no
# Docker engine" where none runs.
container-test:
	@VERSION=$(VERSION) bash scripts/container-test
