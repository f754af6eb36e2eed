package keys

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// PolicyParams is what the node's Vault policy is made from: the same
// settings the node builds its Vault paths from, so the policy names exactly
// the paths the node calls.
type PolicyParams struct {
	TransitMount string // as VaultConfig.TransitMount; default "transit"
	KVMount      string // as VaultConfig.KVMount; default "secret"
	KeyPrefix    string // as VaultConfig.KeyPrefix; default "fednode"

	// Transit: the node's keys are in Transit (KEYS_BACKEND=vault).
	Transit bool
	// JWTSecretPath and RedisPasswordPath are the KV paths the node reads
	// (and, for the JWT secret, writes), as given to Secrets; "" for none.
	JWTSecretPath     string
	RedisPasswordPath string

	// Migration asks for the policy of the one-time move of local keys
	// into Transit (Import) instead of the running node's. The import
	// endpoints are kept out of the running node's policy: import_version
	// on an imported key would let a thief of the node's credentials add a
	// key version whose private half they know, and so sign as the node
	// after the credentials are revoked.
	Migration bool
}

// VaultPolicy returns the least-privilege Vault policy (HCL) for a node
// configured as p. It grants each path the node calls, by exact name (no
// wildcard), with only the capabilities and parameters the node sends:
// Transit keys can be created only as non-exportable rsa-4096 and
// reconfigured only in min_decryption_version, so nothing under
// transit/export, transit/backup or key deletion is reachable, and no other
// key or KV path is. The node's token needs no other policy (not even
// Vault's "default").
//
// It refuses names with characters that would make a policy path a glob
// (* or +) or break the HCL, rather than grant more than one path.
func VaultPolicy(p PolicyParams) (string, error) {
	p = p.withDefaults()
	if err := p.validate(); err != nil {
		return "", err
	}
	var b policyBuilder
	if p.Migration {
		b.comment("fednode: for `fednode admin migrate-keys-to-vault` only; delete it after the move.")
	} else {
		b.comment("fednode: the node's policy, made by `fednode admin vault-policy` from its")
		b.comment("configuration; write it again when VAULT_*_MOUNT, VAULT_KEY_PREFIX,")
		b.comment("KEYS_BACKEND or a *_VAULT_PATH changes.")
	}
	b.line("")
	b.comment("Its own token: lookup-self (start, readiness) and renew-self.")
	b.path("auth/token/lookup-self", []string{"read"}, nil, nil)
	b.path("auth/token/renew-self", []string{"update"}, nil, nil)

	if p.Migration {
		b.line("")
		b.comment("BYOK import: Transit's wrapping key, then each key's versions, oldest")
		b.comment("first, as non-exportable " + transitKeyType + " that Transit may rotate.")
		b.path(p.TransitMount+"/wrapping_key", []string{"read"}, nil, nil)
		for _, use := range []string{UseSig, UseEnc} {
			key := p.TransitMount + "/keys/" + transitKeyName(p.KeyPrefix, use)
			b.path(key, []string{"read"}, nil, nil)
			b.path(key+"/import", []string{"update"}, []param{
				{"ciphertext", ""}, {"hash_function", `"` + importHash + `"`},
				{"type", `"` + transitKeyType + `"`}, {"exportable", "false"}, {"allow_rotation", "true"},
			}, nil)
			b.path(key+"/import_version", []string{"update"}, []param{
				{"ciphertext", ""}, {"hash_function", `"` + importHash + `"`},
			}, nil)
		}
		return b.String(), nil
	}

	if p.Transit {
		for _, use := range []string{UseSig, UseEnc} {
			name := transitKeyName(p.KeyPrefix, use)
			key := p.TransitMount + "/keys/" + name
			b.line("")
			if use == UseSig {
				b.comment("The signing key: read its public halves; create it when absent, only")
				b.comment("as non-exportable " + transitKeyType + "; rotate it; retire old versions; sign.")
			} else {
				b.comment("The encryption key: the same, and decrypt instead of sign.")
			}
			b.path(key, []string{"read", "update"}, []param{{"type", `"` + transitKeyType + `"`}, {"exportable", "false"}}, nil)
			b.path(key+"/rotate", []string{"update"}, nil, noParams)
			b.path(key+"/config", []string{"update"}, []param{{"min_decryption_version", ""}}, nil)
			if use == UseSig {
				b.path(p.TransitMount+"/sign/"+name+"/"+signHash, []string{"update"}, []param{{"input", ""}, {"signature_algorithm", `"` + signAlgorithm + `"`}}, nil)
			} else {
				b.path(p.TransitMount+"/decrypt/"+name, []string{"update"}, []param{{"ciphertext", ""}}, nil)
			}
		}
		name := transitKeyName(p.KeyPrefix, atRestKeySuffix)
		key := p.TransitMount + "/keys/" + name
		b.line("")
		b.comment("The key that wraps the data keys of messages at rest: read it; create")
		b.comment("it when absent, only as non-exportable " + atRestKeyType + "; encrypt and decrypt.")
		b.path(key, []string{"read", "update"}, []param{{"type", `"` + atRestKeyType + `"`}, {"exportable", "false"}}, nil)
		b.path(p.TransitMount+"/encrypt/"+name, []string{"update"}, []param{{"plaintext", ""}}, nil)
		b.path(p.TransitMount+"/decrypt/"+name, []string{"update"}, []param{{"ciphertext", ""}}, nil)
		b.line("")
		b.comment("When each retired key version stops being published.")
		b.path(p.KVMount+"/data/"+retirementsKey(p.KeyPrefix), []string{"create", "read", "update"}, nil, nil)
	}
	if p.JWTSecretPath != "" {
		mount, rest := kvSplit(p.KVMount, p.JWTSecretPath)
		b.line("")
		b.comment("The JWT secret: created on first start, a new version per rotation;")
		b.comment("the metadata lists the versions still honoured.")
		b.path(mount+"/data/"+rest, []string{"create", "read", "update"}, nil, nil)
		b.path(mount+"/metadata/"+rest, []string{"read"}, nil, nil)
	}
	if p.RedisPasswordPath != "" {
		mount, rest := kvSplit(p.KVMount, p.RedisPasswordPath)
		b.line("")
		b.comment("The Redis password: read only.")
		b.path(mount+"/data/"+rest, []string{"read"}, nil, nil)
	}
	return b.String(), nil
}

func (p PolicyParams) withDefaults() PolicyParams {
	if p.TransitMount == "" {
		p.TransitMount = defaultTransitMount
	}
	if p.KVMount == "" {
		p.KVMount = defaultKVMount
	}
	if p.KeyPrefix == "" {
		p.KeyPrefix = defaultKeyPrefix
	}
	return p
}

var (
	// A path segment: no glob (* +), no quote or backslash (HCL), no "..".
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9_@.-]+$`)
	// Transit's own key name rule (\w(([\w-.@]+)?\w)?) for "<prefix>-sig".
	keyPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_@.-]*$`)
)

func validPath(p string) bool {
	if p == "" {
		return false
	}
	for _, s := range strings.Split(p, "/") {
		if !segmentRE.MatchString(s) || s == "." || s == ".." {
			return false
		}
	}
	return true
}

func (p PolicyParams) validate() error {
	var errs []error
	check := func(what, v string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("keys: vault policy: %s %q: use letters, digits and _ . @ - in /-separated parts (no * or +, which Vault reads as globs)", what, v))
		}
	}
	check("transit mount", p.TransitMount, validPath(p.TransitMount))
	check("KV mount", p.KVMount, validPath(p.KVMount))
	check("key prefix", p.KeyPrefix, keyPrefixRE.MatchString(p.KeyPrefix))
	if p.JWTSecretPath != "" {
		check("JWT secret path", p.JWTSecretPath, validPath(p.JWTSecretPath))
	}
	if p.RedisPasswordPath != "" {
		check("Redis password path", p.RedisPasswordPath, validPath(p.RedisPasswordPath))
	}
	if !p.Migration && !p.Transit && p.JWTSecretPath == "" && p.RedisPasswordPath == "" {
		errs = append(errs, errors.New("keys: vault policy: the node uses nothing in Vault (no Transit keys, no KV path)"))
	}
	return errors.Join(errs...)
}

// param is one allowed parameter; value is its one allowed HCL value, or ""
// for any value.
type param struct{ name, value string }

// noParams, as denied_parameters, refuses a request with any parameter.
var noParams = []param{{"*", ""}}

type policyBuilder struct{ strings.Builder }

func (b *policyBuilder) line(s string) { b.WriteString(s + "\n") }

func (b *policyBuilder) comment(s string) { b.line("# " + s) }

// path writes one path block.
func (b *policyBuilder) path(path string, caps []string, allowed, denied []param) {
	b.line(fmt.Sprintf("path %q {", path))
	b.line(`  capabilities = ["` + strings.Join(caps, `", "`) + `"]`)
	b.params("allowed_parameters", allowed)
	b.params("denied_parameters", denied)
	b.line("}")
}

func (b *policyBuilder) params(kind string, ps []param) {
	if len(ps) == 0 {
		return
	}
	width := 0
	for _, p := range ps {
		width = max(width, len(p.name)+2)
	}
	b.line("  " + kind + " = {")
	for _, p := range ps {
		b.line(fmt.Sprintf("    %-*s = [%s]", width, `"`+p.name+`"`, p.value))
	}
	b.line("  }")
}
