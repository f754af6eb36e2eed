package keys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/internal/vaulttest"
	"github.com/fednode/fednode/keys"
)

// docParams is the configuration docs/OPERATIONS.md shows the policies for:
// the default mounts and prefix, keys in Transit, and both secrets in KV.
var docParams = keys.PolicyParams{Transit: true, JWTSecretPath: "fednode/jwt", RedisPasswordPath: "fednode/redis"}

func mustPolicy(t *testing.T, p keys.PolicyParams) string {
	t.Helper()
	s, err := keys.VaultPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOperationsDocShowsTheGeneratedPolicies(t *testing.T) {
	doc, err := os.ReadFile("../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	migration := docParams
	migration.Migration = true
	for name, p := range map[string]keys.PolicyParams{"node": docParams, "migration": migration} {
		if want := "```hcl\n" + mustPolicy(t, p) + "```\n"; !bytes.Contains(doc, []byte(want)) {
			t.Errorf("docs/OPERATIONS.md does not show the %s policy VaultPolicy makes for the defaults:\n%s", name, want)
		}
	}
}

var pathRE = regexp.MustCompile(`(?m)^path "([^"]*)" \{\n  capabilities = \[([^\]]*)\]`)

func TestVaultPolicyNamesExactPathsAndNoDangerousCapability(t *testing.T) {
	migration := docParams
	migration.Migration = true
	for name, p := range map[string]keys.PolicyParams{"node": docParams, "migration": migration} {
		text := mustPolicy(t, p)
		blocks := pathRE.FindAllStringSubmatch(text, -1)
		if len(blocks) != strings.Count(text, "\npath ") {
			t.Fatalf("%s: unparsed path blocks in\n%s", name, text)
		}
		for _, b := range blocks {
			path, caps := b[1], b[2]
			if strings.ContainsAny(path, "*+") || strings.Contains(path, "/export/") || strings.Contains(path, "/backup/") {
				t.Errorf("%s: path %q", name, path)
			}
			for _, c := range []string{"delete", "sudo", "list", "patch", "deny"} {
				if strings.Contains(caps, `"`+c+`"`) {
					t.Errorf("%s: %q has %s", name, path, c)
				}
			}
		}
		if strings.Contains(text, "allow_plaintext_backup") || strings.Contains(text, "deletion_allowed") {
			t.Errorf("%s policy mentions a backup or deletion parameter:\n%s", name, text)
		}
	}
	if node := mustPolicy(t, docParams); strings.Contains(node, "import") || strings.Contains(node, "wrapping_key") {
		t.Errorf("the running node's policy must not import keys:\n%s", node)
	}
}

func TestVaultPolicyRefusesNamesThatWouldWidenIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    keys.PolicyParams
	}{
		{"glob in the key prefix", keys.PolicyParams{Transit: true, KeyPrefix: "fed*"}},
		{"plus in the transit mount", keys.PolicyParams{Transit: true, TransitMount: "transit/+"}},
		{"glob in the KV mount", keys.PolicyParams{Transit: true, KVMount: "secret/*"}},
		{"glob in the JWT path", keys.PolicyParams{JWTSecretPath: "fednode/*"}},
		{"quote in the Redis path", keys.PolicyParams{RedisPasswordPath: `fednode/"x`}},
		{"dot-dot in the JWT path", keys.PolicyParams{JWTSecretPath: "fednode/../other"}},
		{"empty segment", keys.PolicyParams{JWTSecretPath: "fednode//jwt"}},
		{"nothing in Vault", keys.PolicyParams{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := keys.VaultPolicy(tc.p); err == nil {
				t.Fatalf("accepted:\n%s", s)
			}
		})
	}
	// The mount may be named in the secret's path, as Secrets accepts it.
	a := mustPolicy(t, keys.PolicyParams{JWTSecretPath: "secret/fednode/jwt"})
	b := mustPolicy(t, keys.PolicyParams{JWTSecretPath: "fednode/jwt"})
	if a != b || !strings.Contains(a, `path "secret/data/fednode/jwt"`) {
		t.Fatalf("secret/fednode/jwt and fednode/jwt differ:\n%s\n%s", a, b)
	}
}

// nodeOperations runs, through the node's own code, every call a node on
// Vault makes: open (creating the keys when absent) and read the public
// keys, sign, decrypt, rotate both keys, retire after the overlap, check
// its token (readiness), create, rotate and read the JWT secret and its
// versions as node/jwtsecrets.go does, and read the Redis password.
func nodeOperations(t *testing.T, root *vault.Client, vc *keys.VaultClient, p keys.PolicyParams, redisPassword string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return now.Add(time.Duration(offset.Load())) }
	tr, err := keys.OpenTransit(ctx, vc, clock, time.Hour)
	if err != nil {
		t.Fatalf("OpenTransit: %v", err)
	}
	pubs, err := tr.PublicKeys(ctx)
	if err != nil {
		t.Fatalf("PublicKeys: %v", err)
	}
	sig, _ := keys.CurrentKey(pubs, keys.UseSig)
	enc, _ := keys.CurrentKey(pubs, keys.UseEnc)
	kid, s, err := tr.Sign(ctx, []byte("signing string"))
	sum := sha256.Sum256([]byte("signing string"))
	if err != nil || kid != sig.ID || rsa.VerifyPKCS1v15(sig.Key, crypto.SHA256, sum[:], s) != nil {
		t.Fatalf("Sign: %s %v", kid, err)
	}
	dk, _ := fcrypto.NewDataKey()
	w, _ := fcrypto.WrapKey(enc.Key, dk)
	if got, err := tr.Decrypt(ctx, enc.ID, w); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Decrypt: %v", err)
	}
	kek, err := keys.OpenTransitKEK(ctx, vc)
	if err != nil {
		t.Fatalf("OpenTransitKEK: %v", err)
	}
	wrapped, err := kek.WrapDataKey(ctx, dk)
	if err != nil || !keys.IsTransitWrapped(wrapped) || bytes.Contains(wrapped, dk) {
		t.Fatalf("WrapDataKey: %q %v", wrapped, err)
	}
	if got, err := kek.UnwrapDataKey(ctx, wrapped); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("UnwrapDataKey: %v", err)
	}
	for _, use := range []string{keys.UseSig, keys.UseEnc} {
		if _, err := tr.Rotate(ctx, use, time.Hour); err != nil {
			t.Fatalf("Rotate %s: %v", use, err)
		}
	}
	if _, _, err := tr.Sign(ctx, []byte("with the new key")); err != nil {
		t.Fatalf("Sign after the rotation: %v", err)
	}
	offset.Store(int64(2 * time.Hour))
	if err := tr.Retire(ctx); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	mount := p.TransitMount
	if mount == "" {
		mount = "transit"
	}
	for _, use := range []string{keys.UseSig, keys.UseEnc} {
		k, err := root.Logical().Read(mount + "/keys/" + p.KeyPrefix + "-" + use)
		if err != nil {
			t.Fatal(err)
		}
		latest, min := k.Data["latest_version"], k.Data["min_decryption_version"]
		if latest == nil || min == nil || latest.(interface{ String() string }).String() != min.(interface{ String() string }).String() {
			t.Fatalf("%s after Retire: min_decryption_version %v, latest %v", use, min, latest)
		}
	}
	if _, err := tr.Decrypt(ctx, enc.ID, w); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("a retired key decrypted: %v", err)
	}
	if err := vc.Health(ctx); err != nil {
		t.Fatalf("Health (lookup-self): %v", err)
	}

	kv := keys.NewSecrets(vc)
	if _, err := kv.Read(ctx, p.JWTSecretPath, 0); !errors.Is(err, keys.ErrNoSecret) {
		t.Fatalf("JWT secret before the first start: %v", err)
	}
	for i, v := range []string{"first-jwt-secret-at-least-32-characters", "second-jwt-secret-at-least-32-characters"} {
		if n, err := kv.Write(ctx, p.JWTSecretPath, v); err != nil || n != i+1 {
			t.Fatalf("JWT secret write %d: %d %v", i+1, n, err)
		}
	}
	if cur, created, err := kv.Versions(ctx, p.JWTSecretPath); err != nil || cur != 2 || len(created) != 2 {
		t.Fatalf("JWT secret versions: %d %v %v", cur, created, err)
	}
	if v, err := kv.Read(ctx, p.JWTSecretPath, 1); err != nil || v.Value != "first-jwt-secret-at-least-32-characters" {
		t.Fatalf("JWT secret version 1: %+v %v", v, err)
	}
	if v, err := kv.Read(ctx, p.RedisPasswordPath, 0); err != nil || v.Value != redisPassword {
		t.Fatalf("Redis password: %+v %v", v, err)
	}
}

func writeRedisPassword(t *testing.T, root *vault.Client, path string) string {
	t.Helper()
	if _, err := root.Logical().Write("secret/data/"+path, map[string]any{"data": map[string]any{"value": "redis-" + path}}); err != nil {
		t.Fatal(err)
	}
	return "redis-" + path
}

// TestNodePolicyIsEnoughForEveryNodeOperation gives the node nothing but
// VaultPolicy's policy, with a token and with AppRole, and runs all it does.
func TestNodePolicyIsEnoughForEveryNodeOperation(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := context.Background()

	t.Run("token", func(t *testing.T) {
		p := keys.PolicyParams{TransitMount: "transit", KeyPrefix: "tok", Transit: true, JWTSecretPath: "tok/jwt", RedisPasswordPath: "secret/tok/redis"}
		password := writeRedisPassword(t, root, "tok/redis")
		// A TTL shorter than the test: the token lives only if the node
		// renews it with renew-self.
		const ttl = 8 * time.Second
		start := time.Now()
		tok := v.TokenWithPolicy(t, "fednode-tok", mustPolicy(t, p), ttl.String())
		vc, err := keys.NewVaultClient(ctx, keys.VaultConfig{Addr: v.Addr, Token: tok, KeyPrefix: "tok"})
		if err != nil {
			t.Fatal(err)
		}
		defer vc.Close()
		nodeOperations(t, root, vc, p, password)
		time.Sleep(time.Until(start.Add(ttl + 2*time.Second)))
		info, err := root.Auth().Token().Lookup(tok)
		if err != nil || info.Data["last_renewal_time"] == nil {
			t.Fatalf("the node's token was not renewed: %v %v", info, err)
		}
		if err := vc.Health(ctx); err != nil {
			t.Fatalf("the token died after its first TTL: %v", err)
		}
	})

	t.Run("approle", func(t *testing.T) {
		p := keys.PolicyParams{KeyPrefix: "ar", Transit: true, JWTSecretPath: "ar/jwt", RedisPasswordPath: "ar/redis"}
		password := writeRedisPassword(t, root, "ar/redis")
		role, secret := v.AppRole(t, "fednode-ar", mustPolicy(t, p), "10m")
		vc, err := keys.NewVaultClient(ctx, keys.VaultConfig{Addr: v.Addr, RoleID: role, SecretID: secret, KeyPrefix: "ar"})
		if err != nil {
			t.Fatalf("AppRole login: %v", err)
		}
		defer vc.Close()
		nodeOperations(t, root, vc, p, password)
	})
}

// TestMigrationPolicyMovesKeysAndTheNodePolicyRunsThem imports a local
// keyring (two versions of the signing key) with the migration policy only,
// then runs the node on the imported keys with the node policy only,
// rotation included.
func TestMigrationPolicyMovesKeysAndTheNodePolicyRunsThem(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := context.Background()
	order := []int{0, 1, 2}
	local, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) {
		k := testkeys.Key(order[0])
		order = order[1:]
		return k, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.Rotate(ctx, keys.UseSig, time.Hour); err != nil {
		t.Fatal(err)
	}
	p := keys.PolicyParams{KeyPrefix: "mig", Transit: true, JWTSecretPath: "mig/jwt", RedisPasswordPath: "mig/redis"}
	m := p
	m.Migration = true
	mtok := v.TokenWithPolicy(t, "fednode-mig-migrate", mustPolicy(t, m), "15m")
	mvc, err := keys.NewVaultClient(ctx, keys.VaultConfig{Addr: v.Addr, Token: mtok, KeyPrefix: "mig"})
	if err != nil {
		t.Fatal(err)
	}
	defer mvc.Close()
	if err := keys.Import(ctx, mvc, local); err != nil {
		t.Fatalf("Import with the migration policy: %v", err)
	}
	if k, _ := root.Logical().Read("transit/keys/mig-sig"); k == nil || k.Data["latest_version"].(interface{ String() string }).String() != "2" || k.Data["exportable"] != false {
		t.Fatalf("imported signing key: %v", k)
	}

	password := writeRedisPassword(t, root, "mig/redis")
	tok := v.TokenWithPolicy(t, "fednode-mig", mustPolicy(t, p), "10m")
	vc, err := keys.NewVaultClient(ctx, keys.VaultConfig{Addr: v.Addr, Token: tok, KeyPrefix: "mig"})
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	tr, err := keys.OpenTransit(ctx, vc, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sameIdentity(t, local, tr)
	nodeOperations(t, root, vc, p, password)
}

// request is one raw Vault call, made with a client holding some token.
type request struct {
	name string
	op   string // "read", "write", "delete", "list"
	path string
	data map[string]any
}

func (r request) do(c *vault.Client) error {
	var err error
	switch r.op {
	case "read":
		_, err = c.Logical().Read(r.path)
	case "write":
		_, err = c.Logical().Write(r.path, r.data)
	case "delete":
		_, err = c.Logical().Delete(r.path)
	case "list":
		_, err = c.Logical().List(r.path)
	default:
		panic(r.op)
	}
	return err
}

// forbidden reports whether Vault's ACL refused err's request: 403,
// "permission denied". Anything else (success, 400, 404) is not a refusal
// by the policy.
func forbidden(err error) bool {
	var re *vault.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden && strings.Contains(strings.Join(re.Errors, " "), "permission denied")
}

func clientWithToken(t *testing.T, v *vaulttest.Server, token string) *vault.Client {
	t.Helper()
	c := v.Client(t)
	c.SetToken(token)
	return c
}

func mustRefuse(t *testing.T, c *vault.Client, reqs []request) {
	t.Helper()
	for _, r := range reqs {
		if err := r.do(c); !forbidden(err) {
			t.Errorf("%s (%s %s): want 403 permission denied, got %v", r.name, r.op, r.path, err)
		}
	}
}

// TestNodePolicyRefusesWhatTheNodeDoesNotDo: the node's credentials cannot
// make its keys exportable or export them, back them up in plaintext,
// delete them, reach any other key or secret, import key material, or
// change a policy; the migration policy cannot do any of that either, nor
// import keys other than as non-exportable rsa-4096.
func TestNodePolicyRefusesWhatTheNodeDoesNotDo(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := context.Background()
	// Another node's keys and secret on the same Vault.
	for _, name := range []string{"other-sig", "other-enc"} {
		if _, err := root.Logical().Write("transit/keys/"+name, map[string]any{"type": "rsa-4096"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.Logical().Write("secret/data/other/jwt", map[string]any{"data": map[string]any{"value": "x"}}); err != nil {
		t.Fatal(err)
	}
	p := keys.PolicyParams{KeyPrefix: "pol", Transit: true, JWTSecretPath: "pol/jwt", RedisPasswordPath: "pol/redis"}
	writeRedisPassword(t, root, "pol/redis")
	tok := v.TokenWithPolicy(t, "fednode-pol", mustPolicy(t, p), "10m")
	c := clientWithToken(t, v, tok)

	// Before the keys exist: creating them any other way than the node
	// does. Vault compares a non-string allowed value with reflect.DeepEqual
	// on the decoded JSON, so only the JSON boolean false matches
	// `exportable = [false]`: "false" as a string (what `vault write
	// exportable=false` sends) is refused too.
	rsaKey := func(extra map[string]any) map[string]any {
		m := map[string]any{"type": "rsa-4096"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	mustRefuse(t, c, []request{
		{"create exportable", "write", "transit/keys/pol-sig", rsaKey(map[string]any{"exportable": true})},
		{"create exportable (string)", "write", "transit/keys/pol-sig", rsaKey(map[string]any{"exportable": "true"})},
		{"create with exportable as the string false", "write", "transit/keys/pol-sig", rsaKey(map[string]any{"exportable": "false"})},
		{"create with plaintext backup", "write", "transit/keys/pol-sig", rsaKey(map[string]any{"exportable": false, "allow_plaintext_backup": true})},
		{"create another type", "write", "transit/keys/pol-enc", map[string]any{"type": "aes256-gcm96", "exportable": false}},
		{"create with auto-rotation", "write", "transit/keys/pol-enc", rsaKey(map[string]any{"auto_rotate_period": "1h"})},
		{"create a key of another name", "write", "transit/keys/pol-extra", rsaKey(nil)},
	})
	vc, err := keys.NewVaultClient(ctx, keys.VaultConfig{Addr: v.Addr, Token: tok, KeyPrefix: "pol"})
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if _, err := keys.OpenTransit(ctx, vc, nil, time.Hour); err != nil {
		t.Fatalf("the node creates its keys as it does: %v", err)
	}
	if _, err := keys.NewSecrets(vc).Write(ctx, "pol/jwt", "jwt-secret-of-at-least-32-characters"); err != nil {
		t.Fatal(err)
	}

	nodeRefusals := []request{
		// Its own keys: nothing that lets a private key out or away.
		{"config exportable", "write", "transit/keys/pol-sig/config", map[string]any{"exportable": true}},
		{"config exportable beside min_decryption_version", "write", "transit/keys/pol-enc/config", map[string]any{"min_decryption_version": 1, "exportable": true}},
		{"config deletion_allowed", "write", "transit/keys/pol-enc/config", map[string]any{"deletion_allowed": true}},
		{"config allow_plaintext_backup", "write", "transit/keys/pol-sig/config", map[string]any{"allow_plaintext_backup": true}},
		{"config min_encryption_version", "write", "transit/keys/pol-sig/config", map[string]any{"min_encryption_version": 1}},
		{"export signing key", "read", "transit/export/signing-key/pol-sig", nil},
		{"export encryption key", "read", "transit/export/encryption-key/pol-enc", nil},
		{"export public key", "read", "transit/export/public-key/pol-sig", nil},
		{"backup", "read", "transit/backup/pol-sig", nil},
		{"restore", "write", "transit/restore/pol-sig", map[string]any{"backup": "x"}},
		{"delete key", "delete", "transit/keys/pol-sig", nil},
		{"trim versions", "write", "transit/keys/pol-enc/trim", map[string]any{"min_available_version": 1}},
		{"import a version", "write", "transit/keys/pol-sig/import_version", map[string]any{"ciphertext": "x"}},
		{"read the wrapping key", "read", "transit/wrapping_key", nil},
		{"rotate with a parameter", "write", "transit/keys/pol-sig/rotate", map[string]any{"managed_key_name": "x"}},
		{"sign with the encryption key", "write", "transit/sign/pol-enc/sha2-256", map[string]any{"input": "eA=="}},
		{"decrypt with the signing key", "write", "transit/decrypt/pol-sig", map[string]any{"ciphertext": "vault:v1:eA=="}},
		{"sign with another algorithm", "write", "transit/sign/pol-sig/sha2-256", map[string]any{"input": "eA==", "signature_algorithm": "pss"}},
		{"sign a prehashed digest", "write", "transit/sign/pol-sig/sha2-256", map[string]any{"input": "eA==", "prehashed": true}},
		{"sign with an old version", "write", "transit/sign/pol-sig/sha2-256", map[string]any{"input": "eA==", "key_version": 1}},
		{"sign with another hash", "write", "transit/sign/pol-sig/sha2-512", map[string]any{"input": "eA=="}},
		{"encrypt", "write", "transit/encrypt/pol-enc", map[string]any{"plaintext": "eA=="}},
		{"list keys", "list", "transit/keys", nil},
		// Another prefix's keys.
		{"read another key", "read", "transit/keys/other-sig", nil},
		{"sign with another key", "write", "transit/sign/other-sig/sha2-256", map[string]any{"input": "eA==", "signature_algorithm": "pkcs1v15"}},
		{"decrypt with another key", "write", "transit/decrypt/other-enc", map[string]any{"ciphertext": "vault:v1:eA=="}},
		{"configure another key", "write", "transit/keys/other-enc/config", map[string]any{"min_decryption_version": 1}},
		{"rotate another key", "write", "transit/keys/other-sig/rotate", nil},
		// KV: its own paths only, the Redis password read-only, no deletion.
		{"read another secret", "read", "secret/data/other/jwt", nil},
		{"overwrite another secret", "write", "secret/data/other/jwt", map[string]any{"data": map[string]any{"value": "y"}}},
		{"read another secret's metadata", "read", "secret/metadata/other/jwt", nil},
		{"list secrets", "list", "secret/metadata/pol", nil},
		{"write the Redis password", "write", "secret/data/pol/redis", map[string]any{"data": map[string]any{"value": "y"}}},
		{"delete the JWT secret", "delete", "secret/data/pol/jwt", nil},
		{"delete the JWT secret's history", "delete", "secret/metadata/pol/jwt", nil},
		{"destroy a JWT secret version", "write", "secret/destroy/pol/jwt", map[string]any{"versions": []int{1}}},
		{"change the JWT secret's metadata", "write", "secret/metadata/pol/jwt", map[string]any{"max_versions": 1}},
		// Vault itself.
		{"widen its own policy", "write", "sys/policies/acl/fednode-pol", map[string]any{"policy": `path "*" { capabilities = ["sudo"] }`}},
		{"make itself a token", "write", "auth/token/create", map[string]any{"policies": []string{"fednode-pol"}}},
		{"cubbyhole (Vault's default policy)", "write", "cubbyhole/x", map[string]any{"v": "x"}},
	}
	mustRefuse(t, c, nodeRefusals)

	// The migration policy: import only as the node would, nothing else.
	m := p
	m.Migration = true
	mc := clientWithToken(t, v, v.TokenWithPolicy(t, "fednode-pol-migrate", mustPolicy(t, m), "10m"))
	imp := func(extra map[string]any) map[string]any {
		d := map[string]any{"ciphertext": "eA==", "hash_function": "SHA256", "type": "rsa-4096", "exportable": false, "allow_rotation": true}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	mustRefuse(t, mc, []request{
		{"import exportable", "write", "transit/keys/pol-sig/import", imp(map[string]any{"exportable": true})},
		{"import with plaintext backup", "write", "transit/keys/pol-sig/import", imp(map[string]any{"allow_plaintext_backup": true})},
		{"import another type", "write", "transit/keys/pol-sig/import", imp(map[string]any{"type": "aes256-gcm96"})},
		{"import another key", "write", "transit/keys/other-sig/import", imp(nil)},
		{"import over a given version", "write", "transit/keys/pol-sig/import_version", map[string]any{"ciphertext": "eA==", "hash_function": "SHA256", "version": 1}},
		{"export", "read", "transit/export/signing-key/pol-sig", nil},
		{"config exportable", "write", "transit/keys/pol-sig/config", map[string]any{"exportable": true}},
		{"sign", "write", "transit/sign/pol-sig/sha2-256", map[string]any{"input": "eA==", "signature_algorithm": "pkcs1v15"}},
		{"read a secret", "read", "secret/data/pol/jwt", nil},
	})

	// The checks can fail: the policy docs/OPERATIONS.md used to give lets
	// the node's token make its key exportable and export it, as the issue
	// said. (Last, since it changes pol-sig.)
	broad := `path "transit/*" { capabilities = ["create", "read", "update", "list"] }
path "secret/data/pol/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/pol/*" { capabilities = ["read", "list"] }`
	bc := clientWithToken(t, v, v.TokenWithPolicy(t, "fednode-broad", broad, "10m"))
	for _, r := range []request{nodeRefusals[0], nodeRefusals[5]} {
		if err := r.do(bc); err != nil {
			t.Fatalf("the old policy refused %s: %v (then this test proves nothing)", r.name, err)
		}
	}
}
