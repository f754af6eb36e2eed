package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBinaryVersion: `fednode --version` prints the version and the build
// information and exits 0, even where the environment is not a valid
// configuration; a version stamped with -ldflags, as make build and the
// Dockerfile do, is the one printed. (Whether the VCS revision is printed
// depends on how the test binary was built, GOFLAGS=-buildvcs and a git
// work tree: internal/buildinfo tests those lines.)
func TestBinaryVersion(t *testing.T) {
	bin := binary(t)
	stamped := filepath.Join(t.TempDir(), "fednode")
	build := exec.Command("go", "build", "-o", stamped, "-ldflags", "-X github.com/fednode/fednode/internal/buildinfo.version=v9.8.7-test", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		bin, arg, version string
	}{
		{bin, "--version", ""},
		{stamped, "--version", "v9.8.7-test"},
		{stamped, "version", "v9.8.7-test"},
	} {
		cmd := exec.Command(tc.bin, tc.arg)
		cmd.Env = []string{"LOG_LEVEL=shouting"} // not a configuration: --version does not read one
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v", tc.bin, tc.arg, err)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		if !strings.HasPrefix(first, "fednode ") || tc.version != "" && first != "fednode "+tc.version {
			t.Errorf("%s: first line %q", tc.arg, first)
		}
		if !strings.Contains(string(out), "go: "+runtime.Version()) {
			t.Errorf("%s: no Go version in\n%s", tc.arg, out)
		}
	}
}

// TestBinaryHelp: --help, -h and help print the usage on standard output
// and exit 0, whatever the environment; an unknown command prints it on
// standard error and exits 1.
func TestBinaryHelp(t *testing.T) {
	bin := binary(t)
	for _, arg := range []string{"--help", "-h", "help"} {
		cmd := exec.Command(bin, arg)
		cmd.Env = []string{"LOG_LEVEL=shouting"}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{"usage:", "fednode healthcheck", "fednode --version", "Configuration", "README"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: usage lacks %q:\n%s", arg, want, out)
			}
		}
	}
	cmd := exec.Command(bin, "frobnicate")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATA_DIR=" + t.TempDir()}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || len(out) != 0 || !strings.Contains(stderr.String(), "usage:") {
		t.Fatalf("unknown command: exit %d, stdout %q, stderr:\n%s", code, out, stderr.String())
	}
}
