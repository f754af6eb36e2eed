package deploy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/vaulttest"
)

// TestComposeStackWithoutDocker runs what docker-compose.federation.yml
// runs, minus the containers: the secret files scripts/compose-secrets
// makes, deploy/vault/init.sh (twice: it must be rerunnable) against a
// real Vault dev server, and each node with its compose environment (only
// the addresses changed to the test's Redis and Vault, and the secret files'
// paths to where the script made them), started for real: it must become
// ready on its own Redis and its own Vault keys and JWT secret, and its
// token must reach no other node's keys.
func TestComposeStackWithoutDocker(t *testing.T) {
	f, _ := loadCompose(t)
	v := vaulttest.Start(t)
	secrets := filepath.Join(t.TempDir(), "secrets")
	if out, err := exec.Command("bash", "../scripts/compose-secrets", secrets).CombinedOutput(); err != nil {
		t.Fatalf("compose-secrets: %v\n%s", err, out)
	}
	secretFile := func(src string) string {
		return filepath.Join(secrets, strings.TrimPrefix(f.Secrets[src].File, "./deploy/secrets/"))
	}
	write := func(src, value string) {
		if err := os.WriteFile(secretFile(src), []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The test server's root token, as the dev server takes it from this file.
	write("vault-root-token", v.Token)
	if err := v.Client(t).Sys().Unmount("transit"); err != nil { // as a fresh dev server: init.sh enables it
		t.Fatal(err)
	}
	for i := range 2 {
		init := exec.Command("sh", "vault/init.sh")
		init.Env = []string{"VAULT_ADDR=" + v.Addr, "SECRETS_DIR=" + secrets, "POLICY_DIR=vault", "HOME=" + t.TempDir(),
			"PATH=" + filepath.Dir(vaulttest.Binary(t)) + ":" + os.Getenv("PATH")}
		out, err := init.CombinedOutput()
		if err != nil {
			t.Fatalf("init.sh (run %d): %v\n%s", i+1, err, out)
		}
		if want := []string{"created", "exists"}[i]; strings.Count(string(out), "token "+want) != 3 {
			t.Fatalf("init.sh (run %d): want three tokens %s:\n%s", i+1, want, out)
		}
	}

	// node-a makes its own two RSA-4096 Transit keys, as under its policy
	// it must; the others' are made beforehand, in parallel, by the root
	// token without the node's 10 s limit per Vault call: Vault takes
	// seconds per key on a loaded machine, and their making is node-a's test.
	var wg sync.WaitGroup
	for _, key := range []string{"node-b-sig", "node-b-enc", "node-c-sig", "node-c-enc"} {
		wg.Go(func() {
			if _, err := v.Client(t).Logical().Write("transit/keys/"+key, map[string]any{"type": "rsa-4096"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tokens := map[string]string{}
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		s := f.Services[name]
		r := redistest.Start(t)
		src, _ := s.secretAt(s.Environment["REDIS_PASSWORD_FILE"])
		write(src, redistest.Password+"\n")
		env := map[string]string{}
		for k, val := range s.Environment {
			switch {
			case k == "REDIS_URL":
				val = "redis://" + r.Addr + "/0"
			case k == "VAULT_ADDR":
				val = v.Addr
			case k == "LISTEN_ADDR":
				val = "127.0.0.1:0"
			case strings.HasSuffix(k, "_FILE"):
				src, _ := s.secretAt(val)
				val = secretFile(src)
			}
			env[k] = val
		}
		cfg, err := daemon.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tokens[name] = cfg.VaultToken
		d, err := daemon.Open(t.Context(), cfg, daemon.Options{Log: log, Audit: log})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, probe := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(d.URL() + probe)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %s: %v %v", name, probe, resp.Status, err)
			}
			resp.Body.Close()
		}
		if err := d.Close(); err != nil {
			t.Errorf("%s: close: %v", name, err)
		}
	}

	for name, token := range tokens {
		c, err := vault.NewClient(&vault.Config{Address: v.Addr})
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(token)
		for other := range tokens {
			_, err := c.Logical().ReadWithContext(context.Background(), "transit/keys/"+other+"-sig")
			if denied := err != nil && strings.Contains(err.Error(), "permission denied"); denied != (other != name) {
				t.Errorf("%s's token reading %s's signing key: %v", name, other, err)
			}
		}
	}
}
