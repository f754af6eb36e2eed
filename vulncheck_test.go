package fednode_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVulnerabilityScanCanFail: the offline scan `make vulncheck` runs
// reports testdata/vulnfixture, which requires go-jose v4.1.1 and calls its
// JWE decryption (GO-2026-4945), and passes the same module once go-jose is
// at a fixed version. So a green scan of fednode means something.
func TestVulnerabilityScanCanFail(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the vulnerability database and govulncheck (minutes the first time)")
	}
	out := func(args ...string) string {
		cmd := exec.Command("bash", append([]string{"scripts/vulncheck"}, args...)...)
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=auto")
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("scripts/vulncheck %v: %v", args, err)
		}
		return strings.TrimSpace(string(b))
	}
	db, tool := out("db"), out("tool")
	scan := func(dir string) (int, string) {
		cmd := exec.Command(tool, "-db", "file://"+db, "./...")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=auto", "GOFLAGS=-mod=mod")
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(b)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(b)
	}
	if code, report := scan("testdata/vulnfixture"); code != 3 || !strings.Contains(report, "GO-2026-4945") || !strings.Contains(report, "Fixed in: github.com/go-jose/go-jose/v4@v4.1.4") {
		t.Fatalf("the fixture must be reported (exit 3, GO-2026-4945); exit %d:\n%s", code, report)
	}

	fixed := t.TempDir()
	for _, f := range []string{"main.go", "go.mod"} {
		b, err := os.ReadFile(filepath.Join("testdata/vulnfixture", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "go.mod" {
			b = []byte(strings.Replace(string(b), "go-jose/v4 v4.1.1", "go-jose/v4 v4.1.9", 1))
		}
		if err := os.WriteFile(filepath.Join(fixed, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, report := scan(fixed); code != 0 {
		t.Fatalf("the fixture with go-jose v4.1.9 must pass; exit %d:\n%s", code, report)
	}
}
