package deploy_test

import (
	"os"
	"strings"
	"testing"
)

// TestDockerfile: the image is a static binary on distroless, run as the
// non-root user that owns /data (made in the build stage, where there is a
// shell, and copied with its owner, so a fresh named volume inherits it),
// with a liveness healthcheck and SIGTERM as its stop signal.
func TestDockerfile(t *testing.T) {
	docker, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"USER nonroot", "CGO_ENABLED=0", "FROM gcr.io/distroless/static",
		"RUN mkdir -p /out/root/data && chmod 0700 /out/root/data",
		"COPY --from=build --chown=65532:65532 /out/root/ /",
		`HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["/usr/local/bin/fednode", "healthcheck"]`,
		"STOPSIGNAL SIGTERM", "ENV DATA_DIR=/data", "VOLUME /data",
	} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".tools", "deploy/secrets", "data"} {
		if !strings.Contains(string(ignore), "\n"+want+"\n") {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// TestImageBuildsWithThePinnedToolchain: the container image is built with
// the Go toolchain go.mod pins, whose standard library is what `make
// vulncheck` scanned, and the same flags as `make build`, which stamp the
// version `fednode --version` prints.
func TestImageBuildsWithThePinnedToolchain(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var toolchain string
	for _, line := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(line, "toolchain go"); ok {
			toolchain = strings.TrimSpace(v)
		}
	}
	if toolchain == "" {
		t.Fatal("go.mod pins no toolchain")
	}
	docker, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(docker), "FROM golang:"+toolchain+" AS build") {
		t.Fatalf("the Dockerfile must build with golang:%s, go.mod's toolchain", toolchain)
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	const stamp = "-s -w -X github.com/fednode/fednode/internal/buildinfo.version="
	if !strings.Contains(string(docker), `-trimpath -ldflags="`+stamp+"${VERSION}") ||
		!strings.Contains(string(makefile), "-trimpath -ldflags='$(LDFLAGS)'") || !strings.Contains(string(makefile), "LDFLAGS = "+stamp+"$(VERSION)") {
		t.Fatalf("the Dockerfile and make build must both build with -trimpath -ldflags='%s<version>'", stamp)
	}
}
