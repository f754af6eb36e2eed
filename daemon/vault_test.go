package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/vaulttest"
)

// onVault makes a node keep its keys (and, with jwt, its JWT secret) in v,
// under a key prefix of its own.
func onVault(t testing.TB, v *vaulttest.Server, prefix string, jwt bool) func(*daemon.Config) {
	return func(c *daemon.Config) {
		c.KeysBackend, c.VaultAddr, c.VaultKeyPrefix = "vault", v.Addr, prefix
		if jwt {
			c.JWTSecret, c.JWTSecretVaultPath = "", prefix+"/jwt"
		}
		c.VaultToken = nodeToken(t, v, *c, "4h")
	}
}

// nodeToken is a token with exactly the policy `fednode admin vault-policy`
// prints for cfg, and no other: the node runs on the least privilege the
// docs give it.
func nodeToken(t testing.TB, v *vaulttest.Server, cfg daemon.Config, ttl string) string {
	t.Helper()
	policy, err := daemon.VaultPolicy(cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	return v.TokenWithPolicy(t, "node-"+cfg.VaultKeyPrefix, policy, ttl)
}

func TestVaultNodeFederatesWithLocalNode(t *testing.T) {
	v := vaulttest.Start(t)
	local := startNode(t, fastRetry)
	vnode := startNode(t, fastRetry, onVault(t, v, "vnode", false))
	if _, err := os.Stat(filepath.Join(vnode.cfg.DataDir, "keys")); !os.IsNotExist(err) {
		t.Fatal("a node on Vault keys must have no key files")
	}
	alice := local.user("alice")
	bob := vnode.user("bob")
	id := local.send(alice, "bob@"+vnode.srv.Domain(), "local to vault")
	waitStatus(t, local, alice, id, "delivered")
	id = vnode.send(bob, "alice@"+local.srv.Domain(), "vault to local")
	waitStatus(t, vnode, bob, id, "delivered")
	if box := waitMailbox(t, local, alice, 2); box[1]["content"] != "vault to local" {
		t.Fatalf("alice got %v", box)
	}
	if r := vnode.do("GET", "/readyz", "", nil); r.Status != 200 || r.Body["vault"] != "ok" {
		t.Fatalf("readyz: %s", r.Raw)
	}
}

func TestJWTSecretInVaultRotates(t *testing.T) {
	v := vaulttest.Start(t)
	n := startNode(t, onVault(t, v, "jwtnode", true), func(c *daemon.Config) { c.JWTRotationOverlap = time.Hour })
	old := n.admin("root")
	r := n.do("POST", "/api/admin/jwt/rotate", old, nil)
	if r.Status != 200 || r.Body["version"].(float64) != 2 {
		t.Fatalf("rotate: %s", r.Raw)
	}
	fresh := n.login("root", "password-root")
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if r := n.do("GET", "/api/me", tok, nil); r.Status != 200 {
			t.Fatalf("%s token during the overlap: %s", name, r.Raw)
		}
	}
	n.clock.Advance(61 * time.Minute)
	if r := n.do("GET", "/api/me", old, nil); r.Status != 401 {
		t.Fatalf("a token of the previous secret after the overlap: %d", r.Status)
	}
	if r := n.do("GET", "/api/me", fresh, nil); r.Status != 200 {
		t.Fatalf("the new token: %s", r.Raw)
	}
	// A sealed Vault does not stop logins: the secret is cached.
	v.Seal(t)
	defer v.Unseal(t)
	if tok := n.login("root", "password-root"); n.do("GET", "/api/me", tok, nil).Status != 200 {
		t.Fatal("login while Vault is sealed")
	}
	if !strings.Contains(n.audit.String(), "jwt.rotated") {
		t.Fatal("rotation must be audited")
	}
}

func TestVaultSealedUnderLoad(t *testing.T) {
	v := vaulttest.Start(t)
	local := startNode(t, fastRetry)
	vnode := startNode(t, fastRetry, onVault(t, v, "sealed", false))
	alice := local.user("alice")
	bob := vnode.user("bob")
	var mu sync.Mutex
	var toVault, fromVault []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a := local.send(alice, "bob@"+vnode.srv.Domain(), fmt.Sprintf("in %d", i))
			b := vnode.send(bob, "alice@"+local.srv.Domain(), fmt.Sprintf("out %d", i))
			mu.Lock()
			toVault, fromVault = append(toVault, a), append(fromVault, b)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	v.Seal(t)
	time.Sleep(300 * time.Millisecond)
	ready := vnode.do("GET", "/readyz", "", nil)
	if ready.Status != 503 || !strings.Contains(ready.Body["error"].(map[string]any)["message"].(string), "sealed") {
		t.Fatalf("readyz must say Vault is sealed: %d %s", ready.Status, ready.Raw)
	}
	time.Sleep(500 * time.Millisecond) // sends are still accepted meanwhile (the goroutine's send would fail the test)
	v.Unseal(t)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, id := range toVault {
		waitStatus(t, local, alice, id, "delivered")
	}
	for _, id := range fromVault {
		waitStatus(t, vnode, bob, id, "delivered")
	}
	t.Logf("sealed and unsealed under load: %d messages each way, all delivered", len(toVault))
}

func TestVaultTokenRevoked(t *testing.T) {
	v := vaulttest.Start(t)
	// A token of its own, so revoking it leaves the test's root token.
	var token string
	n := startNode(t, onVault(t, v, "revoked", false), func(c *daemon.Config) { token = c.VaultToken })
	if r := n.do("GET", "/readyz", "", nil); r.Status != 200 {
		t.Fatalf("readyz: %s", r.Raw)
	}
	if err := v.Client(t).Auth().Token().RevokeTree(token); err != nil {
		t.Fatal(err)
	}
	r := n.do("GET", "/readyz", "", nil)
	if r.Status != 503 || !strings.Contains(r.Raw, "token") {
		t.Fatalf("readyz after the token was revoked must say so: %d %s", r.Status, r.Raw)
	}
	// The node stays up and keeps serving what does not need Vault.
	if r := n.do("GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
	if r := n.do("GET", "/.well-known/fednode", "", nil); r.Status != 200 {
		t.Fatalf("the node document is served from the cache: %d", r.Status)
	}
}

func TestKeyRotationUnderLoadLosesNothing(t *testing.T) {
	v := vaulttest.Start(t)
	local := startNode(t, fastRetry)
	vnode := startNode(t, fastRetry, onVault(t, v, "rot", false))
	alice := local.user("alice")
	vnode.user("bob")
	var ids []string
	ctx := context.Background()
	for i := 0; i < 60; i++ {
		ids = append(ids, local.send(alice, "bob@"+vnode.srv.Domain(), fmt.Sprintf("m%d", i)))
		switch i {
		case 20:
			if _, err := vnode.srv.RotateKeys(ctx, "enc", time.Hour); err != nil {
				t.Fatal(err)
			}
		case 40:
			if _, err := local.srv.RotateKeys(ctx, "sig", time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range ids {
		if m := waitStatus(t, local, alice, id, "delivered"); m["reason"] != nil {
			t.Fatalf("%s: %v", id, m["reason"])
		}
	}
}

func TestMigrateLocalKeysToVault(t *testing.T) {
	v := vaulttest.Start(t)
	n := startNode(t)
	before := n.do("GET", "/.well-known/fednode", "", nil).Raw
	n.srv.Close()
	cfg := n.cfg
	cfg.VaultAddr, cfg.VaultKeyPrefix = v.Addr, "migrated"
	migration, err := daemon.VaultPolicy(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.VaultToken = v.TokenWithPolicy(t, "migration", migration, "10m") // the migration's own short-lived token
	if err := daemon.MigrateKeysToVault(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := daemon.MigrateKeysToVault(context.Background(), cfg); err == nil {
		t.Fatal("a second migration must refuse to overwrite")
	}
	os.RemoveAll(filepath.Join(cfg.DataDir, "keys"))
	onVault(t, v, "migrated", false)(&n.cfg)
	n.srv = nil
	n.open()
	after := n.do("GET", "/.well-known/fednode", "", nil).Raw
	if keyIDs(before) != keyIDs(after) || keyIDs(after) == "" {
		t.Fatalf("the identity changed:\n%s\n%s", keyIDs(before), keyIDs(after))
	}
}

func keyIDs(doc string) string {
	var ids []string
	for _, part := range strings.Split(doc, `"id":"`)[1:] {
		ids = append(ids, part[:strings.Index(part, `"`)])
	}
	return strings.Join(ids, ",")
}

// TestVaultTokenIsRenewed: a renewable token with a 4 s TTL outlives its TTL
// because the node renews it (a static token cannot log in again, so only
// renewal keeps it alive).
func TestVaultTokenIsRenewed(t *testing.T) {
	v := vaulttest.Start(t)
	n := startNode(t, onVault(t, v, "renew", false), func(c *daemon.Config) { c.VaultToken = nodeToken(t, v, *c, "4s") })
	time.Sleep(9 * time.Second)
	if r := n.do("GET", "/readyz", "", nil); r.Status != 200 {
		t.Fatalf("after twice the token's TTL: %d %s", r.Status, r.Raw)
	}
}

// TestRedisPasswordFromVault: the Redis password comes from KV v2.
func TestRedisPasswordFromVault(t *testing.T) {
	v := vaulttest.Start(t)
	srv := redistest.Start(t)
	if _, err := v.Client(t).Logical().Write("secret/data/fednode/redis", map[string]any{"data": map[string]any{"value": redistest.Password}}); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, onRedis(srv.URL(), false), func(c *daemon.Config) {
		c.RedisPassword, c.RedisPasswordVaultPath, c.VaultAddr = "", "fednode/redis", v.Addr
		c.VaultToken = nodeToken(t, v, *c, "1h")
	})
	n.user("alice")
	if r := n.do("GET", "/readyz", "", nil); r.Status != 200 {
		t.Fatalf("a node on Redis with its password from Vault: %s", r.Raw)
	}
	// The offline admin commands open the store the same way.
	if err := daemon.Promote(context.Background(), n.cfg, "alice"); err != nil {
		t.Fatalf("fednode admin promote with the Redis password in Vault: %v", err)
	}
}
