package federation

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/keys"
)

// A user's end-to-end keys between nodes (docs/PROTOCOL.md 1.3).
//
// Crypto summary. The home node signs each user key document it serves
// with its node signing key (RSASSA-PKCS1-v1_5, SHA-256, through the
// keyring, over fednode.UserKeyDocument.SignedBytes), naming the key by
// the full key id its node document publishes. A node that relays a
// peer's document to its own user checks the signature against the
// peer's node document, fetched from the peer over HTTPS: so a relay
// cannot change a peer's answer unseen, and what a client pins (TOFU) is
// what the home node said. It protects the binding of an address to its
// keys against the relaying node's network and store, not against the
// home node itself, which can always publish other keys: the clients'
// fingerprints and pinning are there for that.
//
// The GET is signed like an inbox request, without a body: (request-target),
// host and date, so the home node knows which node asks, applies its
// federation policy and per-peer limits, and can refuse anonymous harvesting.

// UserKeysRoute is the route of a user's key document, {name} the user's
// name; UserKeysPath is its path for one name.
const UserKeysRoute = "/federation/users/{name}/keys"

// UserKeysPath is the path of name's key document.
func UserKeysPath(name string) string {
	return "/federation/users/" + url.PathEscape(name) + "/keys"
}

// SignedGetHeaders are the headers a bodiless GET between nodes must sign.
var SignedGetHeaders = []string{"(request-target)", "host", "date"}

// MaxUserKeysBytes caps a peer's user key document: two public keys in
// base64 (about 850 bytes), ids, a fingerprint and a 512-byte signature.
const MaxUserKeysBytes = 16 << 10

// SignUserKeys makes the user key document of address (canonical) for k,
// signed by this node (domain) with the keyring's current signing key.
func SignUserKeys(ctx context.Context, kr keys.Keyring, domain, address string, k fednode.UserKeys) (fednode.UserKeyDocument, error) {
	d := fednode.UserKeyDocument{
		Address: address, EncKey: k.Enc, EncKeyID: k.EncKeyID(), SigKey: k.Sig, SigKeyID: k.SigKeyID(),
		CreatedAt: k.CreatedAt.UTC().Format(TimeFormat),
	}
	d.Fingerprint = fednode.Fingerprint(d.EncKeyID, d.SigKeyID)
	kid, sig, err := kr.Sign(ctx, d.SignedBytes())
	if err != nil {
		return fednode.UserKeyDocument{}, fmt.Errorf("federation: sign user keys of %s: %w", address, err)
	}
	d.NodeKeyID, d.NodeSignature = KeyID(domain, kid), sig
	return d, nil
}

// DecodeUserKeyDocument parses a peer's user key document strictly.
func DecodeUserKeyDocument(raw []byte) (fednode.UserKeyDocument, error) {
	var d fednode.UserKeyDocument
	if err := decodeStrict(raw, &d, "user key document"); err != nil {
		return fednode.UserKeyDocument{}, err
	}
	return d, nil
}

// VerifyUserKeys checks d as the document of address served by its home
// node peer: d.Check, then that node_key_id is a signing key of the peer
// (its host is the peer) and that node_signature verifies with it. The
// error is a fednode.EPeerKeysInvalid *fednode.Error.
func VerifyUserKeys(d fednode.UserKeyDocument, address string, peer *Peer) error {
	if err := d.Check(address); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fednode.Errorf(fednode.EPeerKeysInvalid, format, args...)
	}
	host, _, err := ParseKeyID(d.NodeKeyID)
	if err != nil || host != peer.Domain {
		return bad("node_key_id %q is not a key of %s", d.NodeKeyID, peer.Domain)
	}
	pub, ok := peer.SigKeys[d.NodeKeyID]
	if !ok {
		return bad("%s is not a signing key of %s", d.NodeKeyID, peer.Domain)
	}
	h := sha256.Sum256(d.SignedBytes())
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], d.NodeSignature) != nil {
		return bad("the node signature of %s's keys does not verify", address)
	}
	return nil
}

// SignGet prepares r (a bodiless GET to a peer) for sending: it sets Host
// and Date and signs SignedGetHeaders with the keyring's current signing
// key, as node domain.
func SignGet(ctx context.Context, kr keys.Keyring, domain string, r *http.Request, now time.Time) error {
	setHostDate(r, now)
	return signHeaders(ctx, kr, r, SignedGetHeaders, func(kid string) string { return KeyID(domain, kid) })
}

// PeerDocs is what fetching a peer's user keys needs of the directory.
type PeerDocs interface {
	Peer(ctx context.Context, domain string) (*Peer, error)
	Refresh(ctx context.Context, domain string) (*Peer, bool, error)
}

// UserKeysFetcher fetches users' key documents from their home nodes and
// verifies them.
type UserKeysFetcher struct {
	Domain  string // this node, which signs the requests
	Scheme  string // "https", or "http" in development
	Client  *http.Client
	Keyring keys.Keyring
	Peers   PeerDocs
	Now     func() time.Time
}

// Fetch returns the verified key document of addr (a user of another
// node). Its errors are *fednode.Error: ENotFound when the peer has no
// such user or no keys for it, EPeerKeysInvalid when its answer does not
// verify (the cause is wrapped, to log), EUnavailable when it cannot be
// asked or answers otherwise.
func (f *UserKeysFetcher) Fetch(ctx context.Context, addr fednode.Address) (fednode.UserKeyDocument, error) {
	unavailable := func(cause error, format string, args ...any) error {
		return &fednode.Error{Code: fednode.EUnavailable, Message: fmt.Sprintf(format, args...), RetryAfter: 30, Err: cause}
	}
	peer, err := f.Peers.Peer(ctx, addr.Domain)
	if err != nil {
		return fednode.UserKeyDocument{}, unavailable(err, "%s cannot be reached now", addr.Domain)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.Scheme+"://"+addr.Domain+UserKeysPath(addr.User), nil)
	if err != nil {
		return fednode.UserKeyDocument{}, fmt.Errorf("federation: user keys of %s: %w", addr, err)
	}
	req.Header.Set("Accept", "application/json")
	if err := SignGet(ctx, f.Keyring, f.Domain, req, f.Now()); err != nil {
		return fednode.UserKeyDocument{}, err
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return fednode.UserKeyDocument{}, unavailable(err, "%s cannot be reached now", addr.Domain)
	}
	defer resp.Body.Close()
	raw, readErr := ReadCapped(resp, MaxUserKeysBytes)
	switch {
	case resp.StatusCode == http.StatusNotFound && ErrorCode(raw) == fednode.ENotFound:
		return fednode.UserKeyDocument{}, fednode.Errorf(fednode.ENotFound, "%s has not published end-to-end keys", addr)
	case resp.StatusCode != http.StatusOK:
		return fednode.UserKeyDocument{}, unavailable(nil, "%s answered HTTP %d %s", addr.Domain, resp.StatusCode, ErrorCode(raw))
	case readErr != nil:
		return fednode.UserKeyDocument{}, invalid(addr, readErr)
	}
	d, err := DecodeUserKeyDocument(raw)
	if err != nil {
		return fednode.UserKeyDocument{}, invalid(addr, err)
	}
	err = VerifyUserKeys(d, addr.String(), peer)
	if err != nil && !strings.HasPrefix(d.NodeKeyID, addr.Domain+"#") {
		return fednode.UserKeyDocument{}, invalid(addr, err)
	}
	if err != nil { // the peer may have rotated its signing key: one refetch
		if fresh, refetched, ferr := f.Peers.Refresh(ctx, addr.Domain); refetched && ferr == nil {
			err = VerifyUserKeys(d, addr.String(), fresh)
		}
	}
	if err != nil {
		return fednode.UserKeyDocument{}, invalid(addr, err)
	}
	return d, nil
}

// invalid is the refusal of a peer's answer that does not verify; cause
// is kept for the log.
func invalid(addr fednode.Address, cause error) error {
	msg := fmt.Sprintf("%s answered keys for %s that do not verify", addr.Domain, addr)
	var fe *fednode.Error
	if errors.As(cause, &fe) && fe.Code == fednode.EPeerKeysInvalid {
		msg += ": " + fe.Message
	}
	return &fednode.Error{Code: fednode.EPeerKeysInvalid, Message: msg, Err: cause}
}
