package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerTestWithoutEngine: scripts/container-test (make
// container-test), where the docker client finds no engine, fails at once
// and says so, having built and run nothing. And nothing in make test or
// .ci/run touches Docker.
func TestContainerTestWithoutEngine(t *testing.T) {
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	// A docker client with no engine and no compose plugin, which logs
	// every call.
	fake := "#!/bin/sh\necho \"$*\" >>" + calls + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "../scripts/container-test")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "FAIL: no Docker engine") {
		t.Fatalf("want exit 1 and \"no Docker engine\": %v\n%s", err, out)
	}
	log, _ := os.ReadFile(calls)
	if got := strings.Fields(string(log)); strings.Join(got, " ") != "compose version info" {
		t.Fatalf("docker was asked more than whether compose and an engine exist:\n%s", log)
	}

	for _, f := range []string{"../.ci/run", "../Makefile"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, testTarget, _ := strings.Cut(string(b), "\ntest:")
		testTarget, _, _ = strings.Cut(testTarget, "\n\n")
		if f == "../.ci/run" && strings.Contains(string(b), "docker") || strings.Contains(testTarget, "container") {
			t.Errorf("%s: make test and .ci/run must not start Docker", f)
		}
	}
}
