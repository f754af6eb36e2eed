package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fednode/fednode/daemon"
)

// TestBinaryPrintsVaultPolicy: `fednode admin vault-policy` prints exactly
// the policy the configuration needs, and refuses a configuration that uses
// nothing in Vault, without a stack trace.
func TestBinaryPrintsVaultPolicy(t *testing.T) {
	bin := binary(t)
	env := []string{"PATH=" + os.Getenv("PATH"), "KEYS_BACKEND=vault", "VAULT_ADDR=http://127.0.0.1:1", "VAULT_TOKEN=t",
		"JWT_SECRET_VAULT_PATH=fednode/jwt", "VAULT_KEY_PREFIX=nodeb", "DATA_DIR=" + t.TempDir()}
	cfg, err := daemon.FromEnv(func(k string) string {
		for _, e := range env {
			if name, v, _ := strings.Cut(e, "="); name == k {
				return v
			}
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []bool{false, true} {
		args := []string{"admin", "vault-policy"}
		if migrate {
			args = append(args, "migrate")
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		want, _ := daemon.VaultPolicy(cfg, migrate)
		if string(out) != want || !strings.Contains(want, `"transit/keys/nodeb-sig"`) {
			t.Fatalf("%v printed:\n%s\nwant:\n%s", args, out, want)
		}
	}
	cmd := exec.Command(bin, "admin", "vault-policy")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATA_DIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "uses nothing in Vault") || strings.Contains(string(out), "goroutine") {
		t.Fatalf("a configuration without Vault: %v\n%s", err, out)
	}
}

// TestBinaryWarnsOfUnknownVariables: a misspelt variable with one of our
// prefixes is named in a warning at start instead of being ignored in
// silence.
func TestBinaryWarnsOfUnknownVariables(t *testing.T) {
	p := start(t, binary(t), "DATA_DIR="+t.TempDir(), "LISTEN_ADDR=127.0.0.1:0", "RATE_LIMIT_AUHT=5/1m")
	logs := p.logs.String()
	if !strings.Contains(logs, `"variable":"RATE_LIMIT_AUHT"`) || !strings.Contains(logs, `"level":"WARN"`) {
		t.Fatalf("no warning names RATE_LIMIT_AUHT:\n%s", logs)
	}
}
