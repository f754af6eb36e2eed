package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Secrets reads and writes the node's secrets in Vault KV version 2: the
// JWT signing secret, the Redis password. A secret is the field "value" at
// a path; every write is a new version, which is what JWT secret rotation
// with an overlap is built on.
type Secrets struct {
	vc *VaultClient
}

// NewSecrets returns the KV side of a Vault client.
func NewSecrets(vc *VaultClient) *Secrets { return &Secrets{vc: vc} }

// Version is one version of a secret.
type Version struct {
	N       int
	Created time.Time
	Value   string
}

func (s *Secrets) split(path string) (mount, rest string) { return kvSplit(s.vc.cfg.KVMount, path) }

// kvSplit reads a secret's path as "secret/fednode/jwt" or just
// "fednode/jwt" under the configured mount. VaultPolicy uses it too, so the
// policy names the path the node calls.
func kvSplit(kvMount, path string) (mount, rest string) {
	if m, r, ok := strings.Cut(path, "/"); ok && m == kvMount {
		return m, r
	}
	return kvMount, path
}

// Read returns version n of a secret (0: the current one).
func (s *Secrets) Read(ctx context.Context, path string, n int) (Version, error) {
	mount, rest := s.split(path)
	sec, err := s.vc.call(ctx, func() (*vault.Secret, error) {
		return s.vc.c.Logical().ReadWithDataWithContext(ctx, mount+"/data/"+rest, versionQuery(n))
	})
	if err != nil {
		return Version{}, err
	}
	if sec == nil {
		return Version{}, fmt.Errorf("keys: no secret at %s: %w", path, ErrNoSecret)
	}
	data, _ := sec.Data["data"].(map[string]any)
	meta, _ := sec.Data["metadata"].(map[string]any)
	v := Version{Value: fmt.Sprint(data["value"])}
	if data == nil || data["value"] == nil {
		return Version{}, fmt.Errorf("keys: secret %s has no field \"value\": %w", path, ErrNoSecret)
	}
	if num, ok := meta["version"].(json.Number); ok {
		n64, _ := num.Int64()
		v.N = int(n64)
	}
	v.Created, _ = time.Parse(time.RFC3339Nano, fmt.Sprint(meta["created_time"]))
	return v, nil
}

// ErrNoSecret is returned for a path with no secret yet.
var ErrNoSecret = fmt.Errorf("keys: no such secret")

func versionQuery(n int) map[string][]string {
	if n <= 0 {
		return nil
	}
	return map[string][]string{"version": {strconv.Itoa(n)}}
}

// Write stores value as a new version of a secret and returns its number.
func (s *Secrets) Write(ctx context.Context, path, value string) (int, error) {
	mount, rest := s.split(path)
	sec, err := s.vc.write(ctx, mount+"/data/"+rest, map[string]any{"data": map[string]any{"value": value}})
	if err != nil {
		return 0, err
	}
	n, _ := sec.Data["version"].(json.Number).Int64()
	return int(n), nil
}

// Versions lists the live versions of a secret with their creation times,
// and the current version number.
func (s *Secrets) Versions(ctx context.Context, path string) (current int, created map[int]time.Time, err error) {
	mount, rest := s.split(path)
	sec, err := s.vc.read(ctx, mount+"/metadata/"+rest)
	if err != nil {
		return 0, nil, err
	}
	if sec == nil {
		return 0, nil, ErrNoSecret
	}
	c, _ := sec.Data["current_version"].(json.Number).Int64()
	created = map[int]time.Time{}
	vs, _ := sec.Data["versions"].(map[string]any)
	for k, v := range vs {
		n, _ := strconv.Atoi(k)
		m, _ := v.(map[string]any)
		if m["destroyed"] == true || (m["deletion_time"] != nil && m["deletion_time"] != "") {
			continue
		}
		t, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(m["created_time"]))
		created[n] = t
	}
	return int(c), created, nil
}
