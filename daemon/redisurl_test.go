package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRedisURLIsASecret: REDIS_URL may carry an ACL user's password, so it
// may come from REDIS_URL_FILE like every secret, and a REDIS_URL that is
// not a Redis URL is refused without showing the password.
func TestRedisURLIsASecret(t *testing.T) {
	if !slices.Contains(SecretEnvVars, "REDIS_URL") || !slices.Contains(SecretEnvVars, "REDIS_PASSWORD") || !slices.Contains(SecretEnvVars, "VAULT_TOKEN") {
		t.Fatalf("secrets: %v", SecretEnvVars)
	}
	file := filepath.Join(t.TempDir(), "redis-url")
	if err := os.WriteFile(file, []byte("redis://fednode:s3cret@redis:6379/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := FromEnv(func(k string) string { return map[string]string{"REDIS_URL_FILE": file}[k] })
	if err != nil || cfg.RedisURL != "redis://fednode:s3cret@redis:6379/0" {
		t.Fatalf("REDIS_URL_FILE: %q %v", cfg.RedisURL, err)
	}
	for _, bad := range []string{"http://fednode:s3cret@redis:6379", "redis://fednode:s3cret@[::1"} {
		cfg.RedisURL = bad
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "REDIS_URL:") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
