package federation

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/keys"
)

// NodeDocument is served at /.well-known/fednode.
type NodeDocument struct {
	Protocol string   `json:"protocol" strictjson:"required"`
	Domain   string   `json:"domain" strictjson:"required"`
	Inbox    string   `json:"inbox" strictjson:"required"`
	Keys     []DocKey `json:"keys" strictjson:"required"`
}

// DocKey is one published key. A key with expires_at is in its overlap
// window after a rotation: valid for verifying (sig) until then, and not to
// be encrypted to (enc) any more.
type DocKey struct {
	ID           string     `json:"id" strictjson:"required"`        // full key id, domain#kid
	Use          string     `json:"use" strictjson:"required"`       // "sig" or "enc"
	Algorithm    string     `json:"algorithm" strictjson:"required"` // "rsa-sha256" (sig) or "rsa-oaep-256" (enc)
	PublicKeyPEM string     `json:"public_key_pem" strictjson:"required"`
	CreatedAt    time.Time  `json:"created_at" strictjson:"required"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
}

// Algorithms by use.
const (
	AlgSig = "rsa-sha256"
	AlgEnc = "rsa-oaep-256"
)

const maxDocKeys = 16

// BuildNodeDocument makes this node's document from its public keys.
func BuildNodeDocument(domain, scheme string, pubs []keys.PublicKey) NodeDocument {
	d := NodeDocument{Protocol: ProtocolName, Domain: domain, Inbox: scheme + "://" + domain + InboxPath}
	for _, k := range pubs {
		dk := DocKey{ID: KeyID(domain, k.ID), Use: k.Use, Algorithm: AlgSig, PublicKeyPEM: fcrypto.MarshalPublicKeyPEM(k.Key), CreatedAt: k.CreatedAt.UTC()}
		if k.Use == keys.UseEnc {
			dk.Algorithm = AlgEnc
		}
		if !k.ExpiresAt.IsZero() {
			t := k.ExpiresAt.UTC()
			dk.ExpiresAt = &t
		}
		d.Keys = append(d.Keys, dk)
	}
	return d
}

// ErrInvalidDocument marks a node document that its peer served (HTTP 200)
// but that is not a valid node document: the peer's published
// configuration, not an outage, so a sender does not wait for it to change.
var ErrInvalidDocument = errors.New("invalid node document")

// Peer is a validated node document, ready to use.
type Peer struct {
	Domain  string
	Inbox   *url.URL
	SigKeys map[string]*rsa.PublicKey // by full key id, current and overlapping
	Enc     Recipient                 // the key to encrypt to: the newest without expiry
}

// ParseNodeDocument parses and validates the document fetched for domain
// over scheme. It refuses: unknown members or trailing data; another
// protocol; a domain other than the one asked for; an inbox on another host
// or scheme (a document must not send our traffic elsewhere); a key id of
// another domain or whose kind does not match its use; an algorithm that
// does not match the use; a key that is not RSA-4096; repeated ids; more
// than 16 keys; no current signing or encryption key.
func ParseNodeDocument(body []byte, domain, scheme string, now time.Time) (*Peer, error) {
	var d NodeDocument
	if err := decodeStrict(body, &d, "node document"); err != nil {
		return nil, err
	}
	if d.Protocol != ProtocolName {
		return nil, fmt.Errorf("node document: protocol %q is not %s", d.Protocol, ProtocolName)
	}
	if d.Domain != domain {
		return nil, fmt.Errorf("node document: domain %q, fetched for %q", d.Domain, domain)
	}
	inbox, err := url.Parse(d.Inbox)
	if err != nil || inbox.Scheme != scheme || inbox.Host != domain || inbox.User != nil || inbox.Fragment != "" || !strings.HasPrefix(inbox.Path, "/") {
		return nil, fmt.Errorf("node document: inbox %q is not a %s URL on %s", d.Inbox, scheme, domain)
	}
	if len(d.Keys) == 0 || len(d.Keys) > maxDocKeys {
		return nil, fmt.Errorf("node document: %d keys; 1 to %d", len(d.Keys), maxDocKeys)
	}
	p := &Peer{Domain: domain, Inbox: inbox, SigKeys: map[string]*rsa.PublicKey{}}
	seen := map[string]bool{}
	var encCreated time.Time
	for _, k := range d.Keys {
		kd, kid, err := ParseKeyID(k.ID)
		if err != nil || kd != domain || seen[k.ID] || !strings.HasPrefix(kid, k.Use+"-") {
			return nil, fmt.Errorf("node document: key %q is not a key of %s for %q", k.ID, domain, k.Use)
		}
		seen[k.ID] = true
		if (k.Use == keys.UseSig && k.Algorithm != AlgSig) || (k.Use == keys.UseEnc && k.Algorithm != AlgEnc) {
			return nil, fmt.Errorf("node document: key %q: algorithm %q does not fit use %q", k.ID, k.Algorithm, k.Use)
		}
		pub, err := fcrypto.ParsePublicKeyPEM(k.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("node document: key %q: %w", k.ID, err)
		}
		if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
			continue // retired: ignore
		}
		switch k.Use {
		case keys.UseSig:
			p.SigKeys[k.ID] = pub
		case keys.UseEnc:
			if k.ExpiresAt == nil && (p.Enc.EncKey == nil || k.CreatedAt.After(encCreated)) {
				p.Enc, encCreated = Recipient{Domain: domain, EncKeyID: k.ID, EncKey: pub}, k.CreatedAt
			}
		}
	}
	if len(p.SigKeys) == 0 || p.Enc.EncKey == nil {
		return nil, errors.New("node document: needs a live signing key and a current encryption key")
	}
	return p, nil
}
