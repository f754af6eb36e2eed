package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/e2e"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/testkeys"
)

// userKeys are a user's end-to-end public keys as a device makes them:
// an RSA-4096 encryption key (a fixed test key, to spare generating one)
// and an ECDSA P-256 signing key, as DER SubjectPublicKeyInfo.
type userKeys struct {
	enc, sig []byte
	priv     *ecdsa.PrivateKey
}

func newUserKeys(t testing.TB, i int) userKeys {
	t.Helper()
	enc, err := x509.MarshalPKIXPublicKey(&testkeys.Key(i).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return userKeys{enc, sig, ec}
}

// sign sets e's signature as the device of k would make it for a message
// id from from to to (PROTOCOL §5.4: ECDSA P-256 SHA-256, r||s).
func (k userKeys) sign(t testing.TB, id, from, to string, e *fednode.E2E) *fednode.E2E {
	t.Helper()
	f, err1 := fednode.ParseAddress(from, "")
	d, err2 := fednode.ParseAddress(to, "")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if err := e2e.Sign(id, f, d, e, k.priv); err != nil {
		t.Fatal(err)
	}
	return e
}

func (k userKeys) encID() string { return fednode.KeyID(k.enc) }
func (k userKeys) sigID() string { return fednode.KeyID(k.sig) }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// validBackup is a backup of the right structure (the node cannot check
// more).
func validBackup() map[string]any {
	return map[string]any{"v": 1, "kdf": fednode.BackupKDF, "iterations": fednode.BackupMinIter,
		"salt": b64(randomBytes(16)), "nonce": b64(randomBytes(12)), "ciphertext": b64(randomBytes(200))}
}

// publish puts k as the keys of token's user, with a backup.
func publish(t testing.TB, n *testNode, token string, k userKeys) map[string]any {
	t.Helper()
	r := n.do("PUT", "/api/keys", token, map[string]any{"enc_key": b64(k.enc), "sig_key": b64(k.sig), "backup": validBackup()})
	if r.Status != http.StatusOK {
		t.Fatalf("PUT /api/keys: %d %s", r.Status, r.Raw)
	}
	return r.Body
}

// e2ePayload is an end-to-end body of the right sizes, signed (as it
// claims) by sigKey and wrapped to encKeys: the node does no cryptography
// on it, so random bytes stand for the ciphertexts.
func e2ePayload(sigKey string, encKeys ...string) *fednode.E2E {
	e := &fednode.E2E{V: 1, SigKey: sigKey, Nonce: randomBytes(12), Ciphertext: randomBytes(100), Signature: randomBytes(64)}
	for _, k := range encKeys {
		e.Keys = append(e.Keys, fednode.E2EKey{KeyID: k, Wrapped: randomBytes(512)})
	}
	return e
}

// e2eOf reads the "e2e" member of a served message back into its Go form.
func e2eOf(t testing.TB, m map[string]any) *fednode.E2E {
	t.Helper()
	raw, ok := m["e2e"]
	if !ok {
		t.Fatalf("the message has no e2e: %v", m)
	}
	var e fednode.E2E
	if err := json.Unmarshal(marshal(raw), &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

// keyDocument decodes a served user key document strictly.
func keyDocument(t testing.TB, r response) fednode.UserKeyDocument {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("key document: %d %s", r.Status, r.Raw)
	}
	d, err := federation.DecodeUserKeyDocument([]byte(r.Raw))
	if err != nil {
		t.Fatalf("key document: %v\n%s", err, r.Raw)
	}
	return d
}

// peerOf reads node n's document as a peer would.
func peerOf(t testing.TB, n *testNode) *federation.Peer {
	t.Helper()
	resp, err := http.Get(n.url + federation.WellKnownPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p, err := federation.ParseNodeDocument(body, n.srv.Domain(), "http", time.Now())
	if err != nil {
		t.Fatalf("node document: %v\n%s", err, body)
	}
	return p
}

func TestE2EKeysAPI(t *testing.T) {
	n := startNode(t)
	alice, bob := n.user("alice"), n.user("bob")
	aliceAddr := "alice@" + n.srv.Domain()

	if r := n.do("GET", "/api/keys", alice, nil); r.Status != 404 || r.code() != fednode.ENotFound {
		t.Fatalf("GET /api/keys before publishing: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/users/alice/keys", bob, nil); r.Status != 404 || r.code() != fednode.ENotFound {
		t.Fatalf("keys of a user without keys: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/users/nobody/keys", bob, nil); r.Status != 404 || r.code() != fednode.ENotFound {
		t.Fatalf("keys of no such user: %d %s", r.Status, r.Raw)
	}

	k1 := newUserKeys(t, 0)
	put := publish(t, n, alice, k1)
	got := n.do("GET", "/api/keys", alice, nil)
	if got.Status != 200 || !reflect.DeepEqual(got.Body, put) {
		t.Fatalf("GET /api/keys = %d %s; want what PUT answered: %v", got.Status, got.Raw, put)
	}
	if got.Body["backup"] == nil {
		t.Fatal("the backup is not served back")
	}
	// Bob reads alice's document: hers, signed by the node's key.
	doc := keyDocument(t, n.do("GET", "/api/users/"+url.PathEscape(aliceAddr)+"/keys", bob, nil))
	if doc.EncKeyID != k1.encID() || doc.SigKeyID != k1.sigID() || doc.Fingerprint != fednode.Fingerprint(k1.encID(), k1.sigID()) {
		t.Fatalf("alice's document: %+v", doc)
	}
	if err := federation.VerifyUserKeys(doc, aliceAddr, peerOf(t, n)); err != nil {
		t.Fatalf("alice's document does not verify with the node's document: %v", err)
	}
	if short := keyDocument(t, n.do("GET", "/api/users/Alice/keys", bob, nil)); short.Address != aliceAddr {
		t.Fatalf("a bare name is a local user: %+v", short)
	}

	// After the node rotates its signing key, documents are signed with
	// the new one at once (none is answered from before).
	root := n.admin("root")
	alice, bob = n.login("alice", "password-alice"), n.login("bob", "password-bob")
	keyDocument(t, n.do("GET", "/api/users/alice/keys", bob, nil)) // signed, and kept a while
	if r := n.do("POST", "/api/admin/keys/rotate", root, map[string]any{"use": "sig"}); r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Raw)
	}
	rotated := keyDocument(t, n.do("GET", "/api/users/alice/keys", bob, nil))
	if rotated.NodeKeyID == doc.NodeKeyID {
		t.Fatalf("after a rotation the document is still signed by %s", rotated.NodeKeyID)
	}
	if err := federation.VerifyUserKeys(rotated, aliceAddr, peerOf(t, n)); err != nil {
		t.Fatalf("the document after a rotation: %v", err)
	}

	// Replacing the keys is a key change: a new document.
	k2 := newUserKeys(t, 1)
	publish(t, n, alice, k2)
	if d := keyDocument(t, n.do("GET", "/api/users/alice/keys", bob, nil)); d.EncKeyID != k2.encID() || d.SigKeyID != k2.sigID() {
		t.Fatalf("after a replacement: %+v", d)
	}

	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := x509.MarshalPKIXPublicKey(&rsa2048.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	wrongCurve, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	weakBackup := validBackup()
	weakBackup["iterations"] = 1000
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"RSA-2048", map[string]any{"enc_key": b64(small), "sig_key": b64(k1.sig)}, "enc_key"},
		{"P-384", map[string]any{"enc_key": b64(k1.enc), "sig_key": b64(wrongCurve)}, "sig_key"},
		{"the keys swapped", map[string]any{"enc_key": b64(k1.sig), "sig_key": b64(k1.enc)}, "enc_key"},
		{"garbage", map[string]any{"enc_key": b64([]byte("not a key")), "sig_key": b64(k1.sig)}, "enc_key"},
		{"not base64", map[string]any{"enc_key": "%%%", "sig_key": b64(k1.sig)}, "enc_key"},
		{"a weak backup", map[string]any{"enc_key": b64(k1.enc), "sig_key": b64(k1.sig), "backup": weakBackup}, "backup"},
		{"a backup not in base64", map[string]any{"enc_key": b64(k1.enc), "sig_key": b64(k1.sig), "backup": map[string]any{"v": 1, "kdf": fednode.BackupKDF, "iterations": fednode.BackupMinIter, "salt": "!", "nonce": "", "ciphertext": ""}}, "backup.salt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := n.do("PUT", "/api/keys", alice, c.body)
			if r.Status != 400 || r.code() != fednode.EInvalidUserKeys || r.field() != c.field {
				t.Fatalf("%d %s; want 400 invalid_user_keys on %s", r.Status, r.Raw, c.field)
			}
		})
	}
	if d := keyDocument(t, n.do("GET", "/api/users/alice/keys", bob, nil)); d.EncKeyID != k2.encID() {
		t.Fatal("a refused PUT changed the keys")
	}

	for _, c := range []struct{ method, path string }{{"GET", "/api/keys"}, {"PUT", "/api/keys"}, {"DELETE", "/api/keys"}, {"GET", "/api/users/alice/keys"}} {
		if r := n.do(c.method, c.path, "", nil); r.Status != 401 || r.code() != fednode.EUnauthorized {
			t.Fatalf("%s %s without a token: %d %s", c.method, c.path, r.Status, r.Raw)
		}
	}

	if r := n.do("DELETE", "/api/keys", alice, nil); r.Status != 204 {
		t.Fatalf("DELETE /api/keys: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/keys", alice, nil); r.Status != 404 {
		t.Fatalf("GET /api/keys after DELETE: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/users/alice/keys", bob, nil); r.Status != 404 {
		t.Fatalf("alice's document after DELETE: %d %s", r.Status, r.Raw)
	}
	for _, ev := range []string{`"msg":"user_keys.published"`, `"msg":"user_keys.deleted"`} {
		if !strings.Contains(n.audit.String(), ev) {
			t.Fatalf("the audit log has no %s:\n%s", ev, n.audit.String())
		}
	}
}

func TestE2ESend(t *testing.T) {
	n := startNode(t)
	alice, bob, carol := n.user("alice"), n.user("bob"), n.user("carol")
	ka, kb := newUserKeys(t, 0), newUserKeys(t, 1)
	publish(t, n, alice, ka)
	publish(t, n, bob, kb)
	send := func(token string, body map[string]any) response { return n.do("POST", "/api/messages", token, body) }
	aliceAddr, bobAddr := "alice@"+n.srv.Domain(), "bob@"+n.srv.Domain()
	good := func() map[string]any {
		id := fednode.NewID(time.Now())
		return map[string]any{"to": "bob", "id": id, "e2e": ka.sign(t, id, aliceAddr, bobAddr, e2ePayload(ka.sigID(), kb.encID(), ka.encID()))}
	}

	badNonce := good()
	badNonce["e2e"].(*fednode.E2E).Nonce = randomBytes(11)
	noKeys := good()
	noKeys["e2e"].(*fednode.E2E).Keys = nil
	notB64 := good()
	raw := map[string]any{}
	json.Unmarshal(marshal(notB64["e2e"]), &raw)
	raw["ciphertext"] = "???"
	notB64["e2e"] = raw
	for _, c := range []struct {
		name  string
		token string
		mod   func(map[string]any)
		field string
	}{
		{"missing id", alice, func(b map[string]any) { delete(b, "id") }, "id"},
		{"content present", alice, func(b map[string]any) { b["content"] = "clear text" }, "content"},
		{"tags present", alice, func(b map[string]any) { b["tags"] = []string{"x"} }, "tags"},
		{"an id not made now", alice, func(b map[string]any) { b["id"] = fednode.NewID(time.Now().Add(-time.Hour)) }, "id"},
		{"a malformed id", alice, func(b map[string]any) { b["id"] = "not-an-id" }, "id"},
		{"a bad nonce", alice, func(b map[string]any) { b["e2e"] = badNonce["e2e"] }, "e2e"},
		{"no wrapped keys", alice, func(b map[string]any) { b["e2e"] = noKeys["e2e"] }, "e2e"},
		{"a ciphertext not in base64", alice, func(b map[string]any) { b["e2e"] = notB64["e2e"] }, "e2e.ciphertext"},
		{"sig_key not mine", alice, func(b map[string]any) { b["e2e"].(*fednode.E2E).SigKey = kb.sigID() }, "e2e.sig_key"},
		{"a sender without keys", carol, func(b map[string]any) {}, "e2e.sig_key"},
		{"a signature by another key", alice, func(b map[string]any) {
			kb.sign(t, b["id"].(string), aliceAddr, bobAddr, b["e2e"].(*fednode.E2E))
		}, "e2e.signature"},
		{"a signature of random bytes", alice, func(b map[string]any) { b["e2e"].(*fednode.E2E).Signature = randomBytes(64) }, "e2e.signature"},
		{"a signature for another recipient", alice, func(b map[string]any) {
			ka.sign(t, b["id"].(string), aliceAddr, "carol@"+n.srv.Domain(), b["e2e"].(*fednode.E2E))
		}, "e2e.signature"},
		{"a signature for another id", alice, func(b map[string]any) {
			ka.sign(t, fednode.NewID(time.Now()), aliceAddr, bobAddr, b["e2e"].(*fednode.E2E))
		}, "e2e.signature"},
		{"a changed ciphertext", alice, func(b map[string]any) { b["e2e"].(*fednode.E2E).Ciphertext[0] ^= 1 }, "e2e.signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := good()
			c.mod(b)
			r := send(c.token, b)
			if r.Status != 400 || r.code() != fednode.EInvalidE2E || r.field() != c.field {
				t.Fatalf("%d %s; want 400 invalid_e2e on %s", r.Status, r.Raw, c.field)
			}
		})
	}
	// Without e2e, the endpoint is as it was: id is not one of its members.
	if r := send(alice, map[string]any{"to": "bob", "content": "hi", "id": fednode.NewID(time.Now())}); r.Status != 400 || r.code() != fednode.EUnknownField || r.field() != "id" {
		t.Fatalf("id without e2e: %d %s", r.Status, r.Raw)
	}
	if r := send(alice, map[string]any{"to": "bob"}); r.Status != 400 || r.code() != fednode.EMissingField || r.field() != "content" {
		t.Fatalf("no content and no e2e: %d %s", r.Status, r.Raw)
	}

	live := dialWS(t, n, bob, "")
	body := good()
	want := body["e2e"].(*fednode.E2E)
	r := send(alice, body)
	if r.Status != 202 || r.Body["id"] != body["id"] || r.Body["status"] != "delivered" {
		t.Fatalf("a valid e2e message: %d %s", r.Status, r.Raw)
	}
	if dup := send(alice, body); dup.Status != 409 || dup.code() != fednode.EConflict {
		t.Fatalf("the same id again: %d %s", dup.Status, dup.Raw)
	}
	same := func(where string, m map[string]any) {
		t.Helper()
		if m["id"] != body["id"] || m["content"] != "" || len(m["tags"].([]any)) != 0 || !reflect.DeepEqual(e2eOf(t, m), want) {
			t.Fatalf("%s: %v", where, m)
		}
	}
	same("the socket", readMsg(t, live, 5*time.Second))
	box := n.mailbox(bob)
	if len(box) != 1 {
		t.Fatalf("bob's mailbox: %v", box)
	}
	same("bob's mailbox", box[0])
	same("GET by id", n.do("GET", "/api/messages/"+body["id"].(string), bob, nil).Body)
	same("alice's copy", n.do("GET", "/api/messages/"+body["id"].(string), alice, nil).Body)
	cm := n.do("GET", "/api/conversations/alice@"+n.srv.Domain()+"/messages", bob, nil)
	same("the conversation", cm.Body["messages"].([]any)[0].(map[string]any))
	cs := n.do("GET", "/api/conversations", bob, nil).Body["conversations"].([]any)
	if c := cs[0].(map[string]any); c["e2e"] != true || c["last_preview"] != "" {
		t.Fatalf("the conversation entry: %v", c)
	}
	exp := n.do("GET", "/api/me/export", bob, nil)
	same("the export", exp.Body["messages"].([]any)[0].(map[string]any))

	// A plain message has no e2e member, and its conversation no e2e flag.
	n.send(bob, "alice", "plain")
	for _, m := range n.mailbox(alice) {
		if _, ok := m["e2e"]; ok && m["content"] == "plain" {
			t.Fatalf("a plain message has e2e: %v", m)
		}
	}
	if c := n.do("GET", "/api/conversations", bob, nil).Body["conversations"].([]any)[0].(map[string]any); c["e2e"] != nil {
		t.Fatalf("a conversation whose last message is plain: %v", c)
	}
}

// keysPeer is a peer node of the test's making that answers one user's key
// document as serve makes it.
type keysPeer struct {
	*peer
	serve func(w http.ResponseWriter, r *http.Request)
}

func newKeysPeer(t *testing.T) *keysPeer {
	p := &keysPeer{peer: newPeer(t)}
	doc := p.srv.Config.Handler
	p.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/federation/users/") && p.serve != nil {
			p.serve(w, r)
			return
		}
		doc.ServeHTTP(w, r)
	})
	return p
}

func TestE2EFederation(t *testing.T) {
	a, b := startNode(t, fastRetry), startNode(t, fastRetry)
	alice, bob := a.user("alice"), b.user("bob")
	b.user("nokeys")
	ka, kb := newUserKeys(t, 0), newUserKeys(t, 1)
	publish(t, a, alice, ka)
	publish(t, b, bob, kb)
	aliceAddr, bobAddr := "alice@"+a.srv.Domain(), "bob@"+b.srv.Domain()

	// alice reads bob's keys through her node: B's document, as B signed it.
	doc := keyDocument(t, a.do("GET", "/api/users/"+url.PathEscape(bobAddr)+"/keys", alice, nil))
	if doc.Address != bobAddr || doc.EncKeyID != kb.encID() || doc.SigKeyID != kb.sigID() {
		t.Fatalf("bob's document through A: %+v", doc)
	}
	if err := federation.VerifyUserKeys(doc, bobAddr, peerOf(t, b)); err != nil {
		t.Fatalf("bob's document does not verify with B's node document: %v", err)
	}
	direct := keyDocument(t, b.do("GET", "/api/users/bob/keys", bob, nil))
	if direct.NodeKeyID != doc.NodeKeyID || direct.EncKeyID != doc.EncKeyID {
		t.Fatalf("B's own answer %+v differs from what A relayed %+v", direct, doc)
	}
	for _, who := range []string{"nobody", "nokeys"} {
		if r := a.do("GET", "/api/users/"+who+"@"+b.srv.Domain()+"/keys", alice, nil); r.Status != 404 || r.code() != fednode.ENotFound {
			t.Fatalf("%s on B through A: %d %s", who, r.Status, r.Raw)
		}
	}
	// A node that does not federate with B refuses as it refuses to send.
	c := startNode(t, func(cfg *daemon.Config) { cfg.FederationBlocklist = []string{b.srv.Domain()} })
	if r := c.do("GET", "/api/users/"+url.PathEscape(bobAddr)+"/keys", c.user("carol"), nil); r.Status != 422 || r.code() != fednode.ERemote {
		t.Fatalf("bob's keys from a node that blocks B: %d %s", r.Status, r.Raw)
	}
	// B refuses an unsigned read.
	if r := b.do("GET", federation.UserKeysPath("bob"), "", nil); r.Status != 401 || r.code() != fednode.ESigMissing {
		t.Fatalf("an unsigned GET of bob's keys: %d %s", r.Status, r.Raw)
	}

	// An E2E message from A to B arrives with the same payload.
	id := fednode.NewID(time.Now())
	body := map[string]any{"to": bobAddr, "id": id, "e2e": ka.sign(t, id, aliceAddr, bobAddr, e2ePayload(ka.sigID(), kb.encID(), ka.encID()))}
	if r := a.do("POST", "/api/messages", alice, body); r.Status != 202 || r.Body["status"] != "queued" {
		t.Fatalf("send e2e A→B: %d %s", r.Status, r.Raw)
	}
	waitStatus(t, a, alice, body["id"].(string), "delivered")
	got := waitMailbox(t, b, bob, 1)[0]
	if got["id"] != body["id"] || got["from"] != aliceAddr || got["content"] != "" || !reflect.DeepEqual(e2eOf(t, got), body["e2e"]) {
		t.Fatalf("bob got %v", got)
	}

	// A peer answering a document it changed (another encryption key,
	// ids and fingerprint made to match) is caught by the node signature.
	m := newKeysPeer(t)
	mallory := newUserKeys(t, 2)
	m.serve = func(w http.ResponseWriter, r *http.Request) {
		d, err := federation.SignUserKeys(r.Context(), m.kr, m.domain, "eve@"+m.domain, fednode.UserKeys{Enc: kb.enc, Sig: kb.sig, CreatedAt: time.Now()})
		if err != nil {
			t.Error(err)
		}
		d.EncKey, d.EncKeyID = mallory.enc, mallory.encID()
		d.Fingerprint = fednode.Fingerprint(d.EncKeyID, d.SigKeyID)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d)
	}
	if r := a.do("GET", "/api/users/eve@"+m.domain+"/keys", alice, nil); r.Status != 502 || r.code() != fednode.EPeerKeysInvalid {
		t.Fatalf("a tampered document: %d %s", r.Status, r.Raw)
	}
	// ... and one for another address.
	m.serve = func(w http.ResponseWriter, r *http.Request) {
		d, _ := federation.SignUserKeys(r.Context(), m.kr, m.domain, "bob@"+m.domain, fednode.UserKeys{Enc: kb.enc, Sig: kb.sig, CreatedAt: time.Now()})
		json.NewEncoder(w).Encode(d)
	}
	if r := a.do("GET", "/api/users/eve@"+m.domain+"/keys", alice, nil); r.Status != 502 || r.code() != fednode.EPeerKeysInvalid {
		t.Fatalf("another user's document: %d %s", r.Status, r.Raw)
	}
	// A peer that signed properly is believed, and asked with a signed GET.
	var sig string
	m.serve = func(w http.ResponseWriter, r *http.Request) {
		sig = r.Header.Get("Signature")
		d, _ := federation.SignUserKeys(r.Context(), m.kr, m.domain, "eve@"+m.domain, fednode.UserKeys{Enc: kb.enc, Sig: kb.sig, CreatedAt: time.Now()})
		json.NewEncoder(w).Encode(d)
	}
	if r := a.do("GET", "/api/users/eve@"+m.domain+"/keys", alice, nil); r.Status != 200 {
		t.Fatalf("a good document from the test peer: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(sig, `keyId="`+a.srv.Domain()+"#sig-") || !strings.Contains(sig, `headers="(request-target) host date"`) {
		t.Fatalf("A's GET is not signed as the protocol says: %q", sig)
	}
	m.serve = func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) }
	if r := a.do("GET", "/api/users/eve@"+m.domain+"/keys", alice, nil); r.Status != 200 {
		t.Fatalf("eve's keys again, from A's cache: %d %s", r.Status, r.Raw)
	}
	if r := a.do("GET", "/api/users/frank@"+m.domain+"/keys", alice, nil); r.Status != 503 || r.code() != fednode.EUnavailable {
		t.Fatalf("a peer that fails: %d %s", r.Status, r.Raw)
	}
	if r := a.do("GET", "/api/users/eve@127.0.0.1:1/keys", alice, nil); r.Status != 503 || r.code() != fednode.EUnavailable {
		t.Fatalf("an unreachable peer: %d %s", r.Status, r.Raw)
	}

	// B answers a peer's signed GET as it checks a delivery.
	signedGet := func(path string, date time.Time) response {
		req, _ := http.NewRequest("GET", b.url+path, nil)
		if err := federation.SignGet(t.Context(), m.kr, m.domain, req, date); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := response{Status: resp.StatusCode, Raw: string(raw)}
		json.Unmarshal(raw, &out.Body)
		return out
	}
	if d := keyDocument(t, signedGet(federation.UserKeysPath("bob"), time.Now())); d.Address != bobAddr || d.EncKeyID != kb.encID() {
		t.Fatalf("bob's keys for the test peer: %+v", d)
	}
	if r := signedGet(federation.UserKeysPath("bob"), time.Now().Add(-time.Hour)); r.Status != 401 || r.code() != fednode.EDate {
		t.Fatalf("a GET signed an hour ago: %d %s", r.Status, r.Raw)
	}
	if r := signedGet(federation.UserKeysPath("nokeys"), time.Now()); r.Status != 404 || r.code() != fednode.ENotFound {
		t.Fatalf("a user without keys, for a peer: %d %s", r.Status, r.Raw)
	}
	// A signature that leaves host uncovered could be replayed to another
	// node: refused as the inbox refuses it.
	req, _ := http.NewRequest("GET", b.url+federation.UserKeysPath("bob"), nil)
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	p := federation.SignatureParams{Algorithm: "hs2019", Headers: []string{"(request-target)", "date"}}
	ss, _ := federation.SigningString(req, p)
	kid, sigBytes, err := m.kr.Sign(t.Context(), []byte(ss))
	if err != nil {
		t.Fatal(err)
	}
	p.KeyID, p.Signature = federation.KeyID(m.domain, kid), sigBytes
	req.Header.Set("Signature", p.Header())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(raw), fednode.ESigHeaders) {
		t.Fatalf("a GET that does not sign host: %d %s", resp.StatusCode, raw)
	}

	// A peer's e2e message that breaks the rules is refused alone.
	from, _ := fednode.ParseAddress("mallory@"+m.domain, "")
	to, _ := fednode.ParseAddress(bobAddr, "")
	msg := func(content string, e *fednode.E2E) fednode.Message {
		return fednode.Message{ID: fednode.NewID(time.Now()), From: from, To: to, Content: content, CreatedAt: time.Now(), E2E: e}
	}
	short := e2ePayload(kb.sigID(), kb.encID())
	short.Signature = randomBytes(10)
	backdated, future := msg("", e2ePayload(kb.sigID(), kb.encID())), msg("", e2ePayload(kb.sigID(), kb.encID()))
	backdated.CreatedAt = time.Now().Add(-fednode.E2EIDWindow - time.Minute) // the signed id says now
	future.ID = fednode.NewID(time.Now().Add(-time.Hour))                    // created_at says now
	msgs := []fednode.Message{msg("", e2ePayload(kb.sigID(), kb.encID())), msg("clear too", e2ePayload(kb.sigID(), kb.encID())), msg("", short), backdated, future}
	env, err := federation.SealMessages(m.domain, recipientOf(t, b), msgs)
	if err != nil {
		t.Fatal(err)
	}
	r := m.post(b, marshal(env), time.Now(), nil)
	if r.Status != 200 {
		t.Fatalf("the envelope: %d %s", r.Status, r.Raw)
	}
	res := r.Body["results"].([]any)
	for i, want := range []string{"accepted", fednode.EInvalidE2E, fednode.EInvalidE2E, fednode.EInvalidE2E, fednode.EInvalidE2E} {
		x := res[i].(map[string]any)
		if got := x["status"]; (want == "accepted" && got != "accepted") || (want != "accepted" && (got != "refused" || x["code"] != want)) {
			t.Fatalf("message %d: %v; want %s", i, x, want)
		}
	}
	var stored map[string]any
	for _, m := range b.mailbox(bob) {
		if m["id"] == msgs[0].ID {
			stored = m
		}
	}
	if stored == nil || !reflect.DeepEqual(e2eOf(t, stored), msgs[0].E2E) {
		t.Fatalf("the accepted e2e message from the peer: %v", stored)
	}
}
