package daemon_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/e2e"
)

// The web client's end-to-end encryption (web/static/e2e.js, WebCrypto)
// against package e2e (Go, fedctl's): each opens what the other sealed,
// and each restores the other's backup.

// evalJSON runs an async JavaScript expression in the page (e2e.js is E)
// and decodes its JSON-able result into out.
func (tb *tab) evalJSON(what, body string, out any) {
	tb.t.Helper()
	expr := `(async () => { const E = await import('/assets/e2e.js'); ` + body + ` })().then(v => JSON.stringify(v === undefined ? null : v))`
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: %s: %v (page problems: %v)", tb.name, what, err, tb.takeProblems())
	}
	if out != nil {
		if err := json.Unmarshal([]byte(s), out); err != nil {
			tb.t.Fatalf("%s: %s: %v in %s", tb.name, what, err, s)
		}
	}
}

// jsValue is v as a JavaScript expression (JSON is one).
func jsValue(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// publicDoc is what GET /api/users/{address}/keys answers for keys, as far
// as the client reads it (the node signature is the node's business).
func publicDoc(addr fednode.Address, p *e2e.PublicKeys) map[string]any {
	return map[string]any{
		"address": addr.String(), "enc_key": p.EncSPKI, "sig_key": p.SigSPKI,
		"enc_key_id": p.EncKeyID(), "sig_key_id": p.SigKeyID(), "fingerprint": p.Fingerprint(),
	}
}

func TestWebUIE2EVectors(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t)
	page := newTab(t, browser, "page")
	page.do("open the page", chromedp.Navigate(n.url+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))

	alice := fednode.Address{User: "alice", Domain: "a.example"}
	bob := fednode.Address{User: "bob", Domain: "b.example"}
	const pass = "correct horse battery"

	// Ids, key ids and fingerprints: the page's are Go's.
	var ids struct {
		ID, KeyID, Fingerprint string
	}
	page.evalJSON("ids", `return { ID: E.newID(), KeyID: await E.keyID(new TextEncoder().encode('spki')), Fingerprint: await E.fingerprint('a', 'b') }`, &ids)
	if err := fednode.CheckE2EID(ids.ID, time.Now()); err != nil {
		t.Fatalf("the page's message id %q: %v", ids.ID, err)
	}
	if want := fednode.KeyID([]byte("spki")); ids.KeyID != want {
		t.Fatalf("the page's key id %q, Go's %q", ids.KeyID, want)
	}
	if want := fednode.Fingerprint("a", "b"); ids.Fingerprint != want {
		t.Fatalf("the page's fingerprint %q, Go's %q", ids.Fingerprint, want)
	}

	// Bob's keys are made by the page; Go restores them from the page's backup.
	var made struct {
		Enc, Sig    []byte
		Fingerprint string
		Backup      fednode.KeyBackup
	}
	page.evalJSON("make bob's keys", `const g = await E.generate(); window.bob = g.keys;
		return { Enc: E.b64(g.keys.enc), Sig: E.b64(g.keys.sig), Fingerprint: g.keys.fingerprint,
			Backup: await E.sealBackup(`+js(bob.String())+`, g.keys, g.encPkcs8, g.sigPkcs8, `+js(pass)+`) }`, &made)
	bobPub, err := e2e.ParsePublicKeys(made.Enc, made.Sig)
	if err != nil {
		t.Fatalf("the page's public keys: %v", err)
	}
	if made.Fingerprint != bobPub.Fingerprint() {
		t.Fatalf("the page's fingerprint %q, Go's %q", made.Fingerprint, bobPub.Fingerprint())
	}
	if err := made.Backup.Validate(); err != nil {
		t.Fatalf("the page's backup: %v", err)
	}
	if _, err := e2e.UnwrapBackup("wrong passphrase!", bob, bobPub.EncKeyID(), bobPub.SigKeyID(), &made.Backup); err == nil {
		t.Fatal("Go opened the page's backup with a wrong passphrase")
	}
	bobKeys, err := e2e.UnwrapBackup(pass, bob, bobPub.EncKeyID(), bobPub.SigKeyID(), &made.Backup)
	if err != nil {
		t.Fatalf("Go opening the page's backup: %v", err)
	}
	if !bytes.Equal(bobKeys.Public().EncSPKI, made.Enc) || !bytes.Equal(bobKeys.Public().SigSPKI, made.Sig) {
		t.Fatal("the page's backup holds other keys than it published")
	}

	// Alice's keys are made by Go; the page restores them from Go's backup.
	aliceKeys, err := e2e.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	alicePub := aliceKeys.Public()
	aliceBackup, err := e2e.WrapBackup(pass, alice, aliceKeys)
	if err != nil {
		t.Fatal(err)
	}
	aliceDoc := jsValue(t, publicDoc(alice, alicePub))
	var wrong string
	page.evalJSON("restore alice with a wrong passphrase", `try { await E.openBackup(`+js(alice.String())+`, await E.publicKeys(`+aliceDoc+`, `+js(alice.String())+`), `+
		jsValue(t, aliceBackup)+`, 'not the passphrase'); return 'opened' } catch (e) { return e.code }`, &wrong)
	if wrong != "wrong_passphrase" {
		t.Fatalf("the page with a wrong passphrase: %q", wrong)
	}
	var fp string
	page.evalJSON("restore alice", `window.alice = await E.openBackup(`+js(alice.String())+`, await E.publicKeys(`+aliceDoc+`, `+js(alice.String())+`), `+
		jsValue(t, aliceBackup)+`, `+js(pass)+`); return window.alice.fingerprint`, &fp)
	if fp != alicePub.Fingerprint() {
		t.Fatalf("the page restored keys with fingerprint %q, want %q", fp, alicePub.Fingerprint())
	}

	// Go seals from alice to bob: the page opens it as bob and as alice.
	id := fednode.NewID(time.Now())
	sealed, err := e2e.Seal(id, alice, bob, "from Go ✓ \u00e9", []string{"go", "Vector"}, []*e2e.PublicKeys{bobPub}, aliceKeys)
	if err != nil {
		t.Fatal(err)
	}
	msg := jsValue(t, map[string]any{"id": id, "from": alice.String(), "to": bob.String(), "e2e": sealed})
	var opened []struct {
		Content string
		Tags    []string
		Code    string
	}
	page.evalJSON("open Go's message", `const m = `+msg+`, sender = await E.publicKeys(`+aliceDoc+`, `+js(alice.String())+`);
		const tryOpen = async (mm, keys) => { try { return await E.open(mm, keys, sender) } catch (e) { return { code: e.code } } };
		return [await tryOpen(m, window.bob), await tryOpen(m, window.alice), await tryOpen({ ...m, to: 'carol@b.example' }, window.bob),
			await tryOpen({ ...m, id: E.newID() }, window.bob)]`, &opened)
	for i, who := range []string{"bob", "alice"} {
		if o := opened[i]; o.Code != "" || o.Content != "from Go ✓ é" || strings.Join(o.Tags, ",") != "go,Vector" {
			t.Fatalf("the page opening Go's message as %s: %+v", who, o)
		}
	}
	if opened[2].Code != "bad_signature" || opened[3].Code != "bad_signature" {
		t.Fatalf("the page opened Go's message under another recipient or id: %+v", opened[2:])
	}

	// The page seals from bob to alice: Go opens it as alice and as bob.
	var fromPage struct {
		ID  string
		E2E fednode.E2E
	}
	page.evalJSON("seal as bob", `const id = E.newID(); return { ID: id, E2E: await E.seal(id, `+js(bob.String())+`, `+js(alice.String())+
		`, window.bob, await E.publicKeys(`+aliceDoc+`, `+js(alice.String())+`), 'from the page \u0000✓', ['web']) }`, &fromPage)
	if err := fednode.CheckE2EID(fromPage.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := fromPage.E2E.Validate(); err != nil {
		t.Fatalf("the page's payload: %v", err)
	}
	if fromPage.E2E.Keys[0].KeyID != alicePub.EncKeyID() || fromPage.E2E.Keys[1].KeyID != bobPub.EncKeyID() {
		t.Fatal("the page's payload is not wrapped to the recipient, then the sender")
	}
	for _, k := range []*e2e.Keys{aliceKeys, bobKeys} {
		content, tags, err := e2e.Open(fromPage.ID, bob, alice, &fromPage.E2E, k, bobPub)
		if err != nil || content != "from the page ✓" || strings.Join(tags, ",") != "web" {
			t.Fatalf("Go opening the page's message: %q %v %v", content, tags, err)
		}
	}
	if _, _, err := e2e.Open(fromPage.ID, bob, fednode.Address{User: "carol", Domain: "a.example"}, &fromPage.E2E, aliceKeys, bobPub); err == nil {
		t.Fatal("Go opened the page's message under another recipient")
	}

	// The signed bytes are fednode.E2ESignedBytes, byte for byte.
	var signed string
	page.evalJSON("signed bytes", `return E.b64(E.signedBytes(`+js(fromPage.ID)+`, `+js(bob.String())+`, `+js(alice.String())+`, `+jsValue(t, fromPage.E2E)+`))`, &signed)
	if want := base64.StdEncoding.EncodeToString(fednode.E2ESignedBytes(fromPage.ID, bob, alice, &fromPage.E2E)); signed != want {
		t.Fatalf("the page's signed bytes differ from Go's")
	}
	if p := page.takeProblems(); len(p) > 0 {
		t.Fatalf("the page reported: %v", p)
	}
}
