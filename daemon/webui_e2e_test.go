package daemon_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fednode/fednode"
	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/e2e"
	"github.com/fednode/fednode/internal/syncbuf"
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

// vectorPage is a page of a fresh node, to run e2e.js in, logged in as
// nobody.
func vectorPage(t *testing.T) *tab {
	t.Helper()
	page := newTab(t, newBrowser(t), "page")
	page.do("open the page", chromedp.Navigate(startNode(t).url+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	return page
}

func TestWebUIE2EVectors(t *testing.T) {
	page := vectorPage(t)

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

// logInPage logs user in on the page at url and waits for the live socket.
func (tb *tab) logInPage(url, user, password, address string) {
	tb.t.Helper()
	tb.do("open the login", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	tb.do("log in",
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password+"\r"))
	tb.waitFor("logged in", `document.getElementById('me') && document.getElementById('me').textContent === `+js(address), waitLive)
	tb.waitFor("the socket", `document.getElementById('conn').dataset.state === 'live'`, waitLive)
}

// text is the text of the first element matching a CSS selector, or "".
func (tb *tab) text(selector string) string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`(document.querySelector(`+js(selector)+`) || {}).textContent || ''`))
	if err != nil {
		tb.t.Fatalf("%s: text of %s: %v", tb.name, selector, err)
	}
	return v
}

// makeKeys creates keys on the Encryption page and returns the fingerprint.
func (tb *tab) makeKeys(url, passphrase string) string {
	tb.t.Helper()
	tb.do("open Encryption", chromedp.Navigate(url+"/#/encryption"), chromedp.WaitVisible(chromedp.CSS(`#e2e-create input[name=new-passphrase]`)))
	old := tb.text(`#my-fp`)
	tb.do("fill the passphrases",
		chromedp.SendKeys(chromedp.CSS(`#e2e-create input[name=new-passphrase]`), passphrase),
		chromedp.SendKeys(chromedp.CSS(`#e2e-create input[name=new-passphrase-again]`), passphrase),
		chromedp.Click(chromedp.CSS(`#e2e-create button[type=submit]`)))
	tb.waitFor("the keys made", `document.getElementById('my-fp') && document.getElementById('my-fp').textContent !== `+js(old), keygenWait)
	return tb.text(`#my-fp`)
}

// keygenWait bounds an RSA-4096 key generation in a busy headless browser.
const keygenWait = 3 * time.Minute

// lockedShown is a condition: the open conversation shows content with the
// end-to-end lock.
func lockedShown(content string) string {
	return `[...document.querySelectorAll('#thread li')].some(li => li.querySelector('.body').textContent === ` + js(content) + ` && li.querySelector('.lock'))`
}

// failKeys makes the page's GET /api/keys answer 503 unavailable (a node
// that fails for a moment), or undoes it.
func (tb *tab) failKeys(on bool) {
	tb.t.Helper()
	if on {
		tb.eval(`(window.__fetch = window.__fetch || window.fetch, window.fetch = (u, o) => String(u) === '/api/keys' && !(o && o.method && o.method !== 'GET')
			? Promise.resolve(new Response('{"error":{"code":"unavailable","message":"storage unavailable","request_id":"test"}}', { status: 503, headers: { 'Content-Type': 'application/json' } }))
			: window.__fetch(u, o)) && true`)
	} else {
		tb.eval(`(window.fetch = window.__fetch || window.fetch) && true`)
	}
}

// sendText writes content in the open conversation and presses Send.
func (tb *tab) sendText(content string) {
	tb.t.Helper()
	tb.eval(`(document.querySelector('form.composer .error').textContent = '') || true`)
	tb.do("write "+content,
		chromedp.SendKeys(chromedp.CSS(`form.composer textarea`), content),
		chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
}

// hashIs is a condition: the page shows the conversation with w, under its
// canonical address.
func hashIs(w string) string {
	return `decodeURIComponent(location.hash) === ` + js("#/c/"+w) + ` && document.getElementById('thread-h') && document.getElementById('thread-h').textContent === ` + js("With "+w)
}

// TestWebUIE2E is end-to-end encryption as two people use it in the web
// client, alice on node A and bob on node B: keys made in the browser,
// a message only the browsers can read, a second browser restored from
// the backup, a key change that holds sending until it is accepted and
// keeps earlier messages readable, keys that disappear (a key change too),
// a node that cannot say what my keys are, and keys forgotten with the
// account or at logout.
func TestWebUIE2E(t *testing.T) {
	browser := newBrowser(t)
	logA, logB := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	// alice's node keeps bob's key answers (his keys, or "none") for a
	// millisecond, not a minute or 30 s, so that her page sees each change
	// of his keys (made, replaced, removed) at once: with a second, a
	// reload just after bob made his keys could still be told "none".
	shortTTL := func(c *daemon.Config) {
		c.PeerUserKeysTTL, c.PeerUserKeysNotFoundTTL = time.Millisecond, time.Millisecond
	}
	a, b := startNode(t, fastRetry, logTo{logA}, shortTTL), startNode(t, fastRetry, logTo{logB}, shortTTL)
	a.register("alice", "password-alice")
	b.register("bob", "password-bob")
	alice, bob := "alice@"+a.srv.Domain(), "bob@"+b.srv.Domain()
	bobAddr := fednode.Address{User: "bob", Domain: b.srv.Domain()}

	ta, tb := newTab(t, browser, "alice"), newTab(t, browser, "bob")
	ta.logInPage(a.url, "alice", "password-alice", alice)
	tb.logInPage(b.url, "bob", "password-bob", bob)

	// Without keys, a conversation says why it is not encrypted; the
	// address is made canonical (the AAD binds it) and the page moves there.
	tb.do("bob opens ALICE", chromedp.Navigate(b.url+"/#/c/"+url.PathEscape(strings.ToUpper("alice")+"@"+a.srv.Domain())))
	tb.waitFor("the canonical conversation", hashIs(alice), waitLive)
	tb.waitFor("not encrypted: bob has no keys", `document.querySelector('[data-e2e=off]') && document.querySelector('[data-e2e=off]').textContent.includes('you have no keys')`, waitLive)

	// The passphrase is asked twice and must be long enough.
	ta.do("open Encryption", chromedp.Navigate(a.url+"/#/encryption"), chromedp.WaitVisible(chromedp.CSS(`#e2e-create input[name=new-passphrase]`)))
	// A password manager files the passphrase apart from the login.
	if !ta.eval(`document.querySelector('#e2e-create input[autocomplete=username]').value === ` + js(alice+" (end-to-end backup)")) {
		t.Fatal("the create form has no user name of its own for a password manager")
	}
	ta.do("a short passphrase",
		chromedp.SendKeys(chromedp.CSS(`#e2e-create input[name=new-passphrase]`), "short"),
		chromedp.SendKeys(chromedp.CSS(`#e2e-create input[name=new-passphrase-again]`), "short"))
	ta.eval(`document.getElementById('e2e-create').dispatchEvent(new Event('submit', { cancelable: true })) || true`) // past the browser's own minlength check
	ta.waitFor("too short, in words", `document.querySelector('#e2e-create .error').textContent.includes('at least 10')`, 5*time.Second)
	aliceFP := ta.makeKeys(a.url, "alice's long passphrase")

	// Bob has no keys yet: alice's conversation says so.
	ta.do("alice opens bob", chromedp.Navigate(a.url+"/#/c/"+url.PathEscape(bob)))
	ta.waitFor("not encrypted: bob has none", `document.querySelector('[data-e2e=off]') && document.querySelector('[data-e2e=off]').textContent.includes(`+js(bob+" has no keys")+`)`, waitLive)

	const bobPass = "bob's backup passphrase"
	bobFP := tb.makeKeys(b.url, bobPass)
	if bobFP == aliceFP || len(bobFP) != 79 {
		t.Fatalf("fingerprints: alice %q, bob %q", aliceFP, bobFP)
	}

	// Both have keys: alice's conversation is encrypted, with bob's fingerprint.
	ta.do("reload", chromedp.Reload())
	ta.waitFor("encrypted with bob's fingerprint", `document.querySelector('[data-e2e=on] .fp') && document.querySelector('[data-e2e=on] .fp').textContent === `+js(bobFP), waitLive)
	ta.do("send the canary",
		chromedp.SendKeys(chromedp.CSS(`form.composer textarea`), e2eCanary),
		chromedp.SendKeys(chromedp.CSS(`form.composer input[name=tags]`), e2eCanaryTag),
		chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
	ta.waitFor("alice sees her message, locked", lockedShown(e2eCanary), waitLive)

	// Bob's page opens it.
	tb.do("bob opens alice", chromedp.Navigate(b.url+"/#/c/"+url.PathEscape(alice)))
	tb.waitFor("the canary in clear at bob, locked", lockedShown(e2eCanary), waitLive)
	tb.waitFor("encrypted with alice's fingerprint", `document.querySelector('[data-e2e=on] .fp') && document.querySelector('[data-e2e=on] .fp').textContent === `+js(aliceFP), waitLive)
	tb.screenshot("e2e-conversation")

	// The nodes carried it without reading it: what they serve holds none of it.
	bobToken := b.login("bob", "password-bob")
	box := b.mailbox(bobToken)
	if len(box) != 1 || box[0]["content"] != "" || box[0]["e2e"] == nil {
		t.Fatalf("bob's mailbox through the API: %v", box)
	}
	served := map[string]string{
		"A's mailbox of alice": a.do("GET", "/api/messages", a.login("alice", "password-alice"), nil).Raw,
		"B's mailbox of bob":   b.do("GET", "/api/messages", bobToken, nil).Raw,
	}
	for where, raw := range served {
		if !strings.Contains(raw, `"e2e"`) {
			t.Fatalf("%s has no e2e message: the check would prove nothing: %s", where, raw)
		}
		if piece, ok := leaksCanary([]byte(raw)); ok {
			t.Errorf("%s holds %q of the canary", where, piece)
		}
	}

	// Bob writes with his first keys; alice reads it.
	tb.sendText("from my first keys")
	ta.waitFor("bob's first-key message", lockedShown("from my first keys"), waitLive)

	// A node that serves another payload under an id already opened: the
	// page opens it again rather than show what it opened before.
	ta.eval(`(window.__target = [...document.querySelectorAll('#thread li')].find(li => li.querySelector('.body').textContent === 'from my first keys').dataset.id,
		window.__real = window.fetch, window.fetch = async (u, o) => {
			const r = await window.__real(u, o);
			if (!String(u).includes('/messages') || (o && o.method && o.method !== 'GET')) return r;
			const d = await r.json();
			for (const m of d.messages || []) if (m.id === window.__target) m.e2e.signature = btoa(String.fromCharCode(...new Uint8Array(64)));
			return new Response(JSON.stringify(d), { status: r.status, headers: { 'Content-Type': 'application/json' } });
		}) && true`)
	reopen := func() {
		ta.eval(`(location.hash = '#/') && true`)
		ta.waitFor("home", `!document.getElementById('thread')`, waitLive)
		ta.eval(`(location.hash = '#/c/' + encodeURIComponent(` + js(bob) + `)) && true`)
	}
	reopen()
	ta.waitFor("the forged payload opened again, and refused", `[...document.querySelectorAll('#thread li .body')].some(e => e.textContent === 'could not decrypt: the signature does not verify')`, waitLive)
	if ta.eval(lockedShown("from my first keys")) {
		t.Fatal("the page shows what it opened before under an id the node now gives another payload")
	}
	ta.eval(`(window.fetch = window.__real) && true`)
	reopen()
	ta.waitFor("the true payload again", lockedShown("from my first keys"), waitLive)

	// Go seals markup to bob: his page shows it as text, and runs nothing.
	carol := newE2EUser(t, a, "carol")
	const markup = `<img src=x onerror="window.pwned=1">`
	xid := fednode.NewID(time.Now())
	xss, err := e2e.Seal(xid, carol.addr(), bobAddr, markup, nil, []*e2e.PublicKeys{carol.keysOf(t, bobAddr)}, carol.keys)
	if err != nil {
		t.Fatal(err)
	}
	if r := a.do("POST", "/api/messages", carol.token, map[string]any{"to": bob, "id": xid, "e2e": xss}); r.Status != 202 {
		t.Fatalf("carol's message: %d %s", r.Status, r.Raw)
	}
	tb.do("bob opens carol", chromedp.Navigate(b.url+"/#/c/"+url.PathEscape(carol.addr().String())))
	tb.waitFor("the markup as text, locked", lockedShown(markup), waitLive)
	if !tb.eval(`!document.querySelector('#main img') && window.pwned === undefined`) {
		t.Fatal("bob's page made an element of an end-to-end message, or ran it")
	}

	// A node that cannot say what alice's keys are: the page refuses to
	// send (never in clear), and does not offer to replace her keys.
	ta.failKeys(true)
	ta.eval(`(location.hash = '#/encryption') && true`)
	ta.waitFor("my keys unknown", `document.getElementById('e2e-mine') && document.getElementById('e2e-mine').textContent.includes('cannot be checked')`, waitLive)
	if ta.eval(`document.getElementById('e2e-create')`) {
		t.Fatal("the Encryption page offers to create keys while the node cannot say whether alice has some")
	}
	ta.eval(`(location.hash = '#/c/' + encodeURIComponent(` + js(bob) + `)) && true`)
	ta.waitFor("encryption unknown", `document.querySelector('[data-e2e=error]') && document.querySelector('[data-e2e=error]').textContent.includes('cannot be checked')`, waitLive)
	ta.sendText("while my keys are unknown")
	ta.waitFor("refused, in words", `document.querySelector('form.composer .error').textContent.includes('Not sent')`, waitLive)
	ta.failKeys(false)
	ta.do("try again", chromedp.Click(chromedp.Search(`//button[text()="Try again"]`)))
	ta.waitFor("encrypted again", `document.querySelector('[data-e2e=on] .fp') && document.querySelector('[data-e2e=on] .fp').textContent === `+js(bobFP), waitLive)
	for _, m := range a.mailbox(a.login("alice", "password-alice")) {
		if m["content"] == "while my keys are unknown" || m["e2e"] == nil {
			t.Fatalf("alice sent while her keys were unknown: %v", m)
		}
	}

	// A second browser for bob: a wrong passphrase restores nothing, the
	// right one restores the keys, and the page then reads the canary.
	tb2 := newTab(t, browser, "bob's second browser")
	tb2.logInPage(b.url, "bob", "password-bob", bob)
	tb2.do("open Encryption", chromedp.Navigate(b.url+"/#/encryption"), chromedp.WaitVisible(chromedp.CSS(`#e2e-restore input[name=restore-passphrase]`)))
	if !tb2.eval(`document.querySelector('#e2e-restore input[autocomplete=username]').value === ` + js(bob+" (end-to-end backup)")) {
		t.Fatal("the restore form has no user name of its own for a password manager")
	}
	tb2.do("a wrong passphrase",
		chromedp.SendKeys(chromedp.CSS(`#e2e-restore input[name=restore-passphrase]`), "not bob's passphrase"),
		chromedp.Click(chromedp.CSS(`#e2e-restore button[type=submit]`)))
	tb2.waitFor("wrong passphrase, in words", `document.querySelector('#e2e-restore .error').textContent.includes('Wrong passphrase')`, keygenWait)
	var stored bool
	tb2.evalJSON("nothing stored", `return (await E.loadKeys(`+js(bob)+`)) !== null`, &stored)
	if stored {
		t.Fatal("a wrong passphrase stored keys")
	}
	tb2.eval(`(document.querySelector('#e2e-restore input[name=restore-passphrase]').value = '') || true`)
	tb2.do("the right passphrase",
		chromedp.SendKeys(chromedp.CSS(`#e2e-restore input[name=restore-passphrase]`), bobPass),
		chromedp.Click(chromedp.CSS(`#e2e-restore button[type=submit]`)))
	tb2.waitFor("restored", `document.getElementById('my-fp') && document.getElementById('my-fp').textContent === `+js(bobFP), keygenWait)
	tb2.do("open alice", chromedp.Navigate(b.url+"/#/c/"+url.PathEscape(alice)))
	tb2.waitFor("the canary in the second browser", lockedShown(e2eCanary), waitLive)

	// Bob makes new keys: alice is warned with both fingerprints, and
	// nothing is sent until she accepts the new key.
	newFP := tb.makeKeys(b.url, "bob's new passphrase!")
	tb.screenshot("encryption")
	if newFP == bobFP {
		t.Fatal("new keys, same fingerprint")
	}
	ta.do("reload", chromedp.Reload())
	ta.waitFor("the key-change warning", `document.querySelector('[data-e2e=changed] .fp.old') && document.querySelector('[data-e2e=changed] .fp.old').textContent === `+js(bobFP)+
		` && document.querySelector('[data-e2e=changed] .fp.new').textContent === `+js(newFP), waitLive)
	ta.screenshot("e2e-key-change")
	// A message signed with the new key opens, with a warning, until accepted.
	tb.do("bob opens alice", chromedp.Navigate(b.url+"/#/c/"+url.PathEscape(alice)), chromedp.WaitVisible(chromedp.CSS(`form.composer textarea`)))
	tb.waitFor("bob still writes encrypted", `!!document.querySelector('[data-e2e=on]')`, waitLive)
	tb.sendText("from my new keys")
	ta.waitFor("bob's new-key message, with a warning", `[...document.querySelectorAll('#thread li')].some(li => li.querySelector('.body').textContent === 'from my new keys' && li.querySelector('.e2e-warn'))`, waitLive)
	sent := len(b.mailbox(bobToken))
	ta.sendText("before accepting")
	ta.waitFor("refused, in words", `document.querySelector('form.composer .error').textContent.includes('Accept new key')`, waitLive)
	if box := b.mailbox(bobToken); len(box) != sent {
		t.Fatalf("a message went out before the new key was accepted: %v", box)
	}
	ta.do("accept the new key", chromedp.Click(chromedp.Search(`//button[text()="Accept new key"]`)))
	ta.waitFor("encrypted with the new fingerprint", `document.querySelector('[data-e2e=on] .fp') && document.querySelector('[data-e2e=on] .fp').textContent === `+js(newFP), waitLive)
	ta.waitFor("the warning gone once accepted", `[...document.querySelectorAll('#thread li')].some(li => li.querySelector('.body').textContent === 'from my new keys' && li.querySelector('.lock') && !li.querySelector('.e2e-warn'))`, waitLive)
	ta.do("send after accepting", chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
	ta.waitFor("sent", lockedShown("before accepting"), waitLive)
	tb.waitFor("bob reads it with the new keys", lockedShown("before accepting"), waitLive)
	// The second browser kept the old keys: it says why it cannot read it.
	tb2.waitFor("could not decrypt, in words", `[...document.querySelectorAll('#thread li .body')].some(e => e.textContent === "could not decrypt: not for this device's key")`, waitLive)
	// Bob's message from before his new keys still opens, without a warning.
	ta.do("reload", chromedp.Reload())
	ta.waitFor("bob's first-key message after accepting", `[...document.querySelectorAll('#thread li')].some(li => li.querySelector('.body').textContent === 'from my first keys' && li.querySelector('.lock') && !li.querySelector('.e2e-warn'))`, waitLive)

	// Bob's keys disappear from his node: a key change too. Nothing is sent
	// until alice chooses clear text; his earlier messages still open.
	if r := b.do("DELETE", "/api/keys", bobToken, nil); r.Status != 204 {
		t.Fatalf("delete bob's keys: %d %s", r.Status, r.Raw)
	}
	time.Sleep(1100 * time.Millisecond) // A's copy of bob's keys (shortTTL) runs out
	ta.do("reload", chromedp.Reload())
	ta.waitFor("the keys-gone warning", `document.querySelector('[data-e2e=gone] .fp.old') && document.querySelector('[data-e2e=gone] .fp.old').textContent === `+js(newFP), waitLive)
	ta.screenshot("e2e-keys-gone")
	sent = len(b.mailbox(bobToken))
	ta.sendText("after the keys went")
	ta.waitFor("refused, in words", `document.querySelector('form.composer .error').textContent.includes('removed')`, waitLive)
	ta.waitFor("bob's earlier message still opens", lockedShown("from my new keys"), waitLive)
	time.Sleep(500 * time.Millisecond) // a message sent in clear would be on its way
	if box := b.mailbox(bobToken); len(box) != sent {
		t.Fatalf("a message went out after bob's keys went: %v", box[len(box)-1])
	}
	// Bob's own first browser holds keys his node no longer publishes.
	tb.do("reload", chromedp.Reload())
	tb.waitFor("bob's keys do not match", `!!document.querySelector('[data-e2e=mine]')`, waitLive)
	ta.do("choose clear text", chromedp.Click(chromedp.Search(`//button[text()="Send unencrypted from now on"]`)))
	ta.waitFor("not encrypted", `document.querySelector('[data-e2e=off]') && document.querySelector('[data-e2e=off]').textContent.includes(`+js(bob+" has no keys")+`)`, waitLive)
	ta.do("send in clear", chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
	waitMailbox(t, b, bobToken, sent+1)
	if box := b.mailbox(bobToken); box[len(box)-1]["content"] != "after the keys went" {
		t.Fatalf("bob's newest message: %v", box[len(box)-1])
	}

	// Logging out with "forget my keys" leaves nothing of bob's in his
	// second browser; deleting her account does the same for alice.
	tb2.do("log out and forget", chromedp.Click(chromedp.CSS(`#logout-forget`)), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	var kept []bool
	tb2.evalJSON("bob's keys forgotten", `return [(await E.loadKeys(`+js(bob)+`)) !== null, localStorage.getItem('fednode.e2e.pins.' + `+js(bob)+`) !== null]`, &kept)
	if kept[0] || kept[1] {
		t.Fatalf("bob's second browser kept keys %v, pins %v", kept[0], kept[1])
	}
	ta.evalJSON("alice's keys and pins", `return [(await E.loadKeys(`+js(alice)+`)) !== null, localStorage.getItem('fednode.e2e.pins.' + `+js(alice)+`) !== null]`, &kept)
	if !kept[0] || !kept[1] {
		t.Fatalf("alice's browser before deleting her account: keys %v, pins %v: the check is broken", kept[0], kept[1])
	}
	ta.do("privacy", chromedp.Navigate(a.url+"/#/privacy"), chromedp.WaitVisible(chromedp.CSS(`form.card button.danger`)))
	ta.do("delete alice's account",
		chromedp.SendKeys(chromedp.CSS(`form.card input[name=password]`), "password-alice"),
		chromedp.Click(chromedp.CSS(`form.card input[name=sure]`)),
		chromedp.Click(chromedp.CSS(`form.card button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	ta.evalJSON("alice's keys forgotten", `return [(await E.loadKeys(`+js(alice)+`)) !== null, localStorage.getItem('fednode.e2e.pins.' + `+js(alice)+`) !== null]`, &kept)
	if kept[0] || kept[1] {
		t.Fatalf("alice's browser kept keys %v, pins %v after her account was deleted", kept[0], kept[1])
	}

	// Nothing either node logged or audited holds a piece of the canary.
	for where, raw := range map[string]string{"A's log": logA.String(), "B's log": logB.String(), "A's audit stream": a.audit.String(), "B's audit stream": b.audit.String()} {
		if piece, ok := leaksCanary([]byte(raw)); ok {
			t.Errorf("%s holds %q of the canary", where, piece)
		}
	}
	if logB.String() == "" || a.audit.String() == "" {
		t.Fatal("nothing logged or audited: the check would prove nothing")
	}

	for _, tt := range []*tab{ta, tb, tb2} {
		if p := tt.takeProblems(); len(p) > 0 {
			t.Fatalf("%s's page reported: %v", tt.name, p)
		}
	}
}

// protocolVectors reads what a client needs of PROTOCOL §5.9: alice's
// public keys, the message alice sealed to bob, and alice's backup.
func protocolVectors(t *testing.T) (aliceDoc, message, backup string) {
	t.Helper()
	raw, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	find := func(what, pattern, in string) string {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(in)
		if m == nil {
			t.Fatalf("PROTOCOL §5.9 has no %s (%s)", what, pattern)
		}
		return m[1]
	}
	keys := find("alice's keys", "(?s)(`alice@a\\.example`: encryption key id.*?)`bob@b\\.example`", doc)
	enc := strings.ReplaceAll(find("alice's encryption key", "(?s)Encryption key SubjectPublicKeyInfo \\(base64\\):\n\n```\n(.*?)\n```", keys), "\n", "")
	sig := find("alice's signing key", "SubjectPublicKeyInfo \\(base64\\): `([^`]+)`", keys)
	encB, err1 := base64.StdEncoding.DecodeString(enc)
	sigB, err2 := base64.StdEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		t.Fatalf("PROTOCOL §5.9: alice's keys: %v %v", err1, err2)
	}
	p, err := e2e.ParsePublicKeys(encB, sigB)
	if err != nil {
		t.Fatal(err)
	}
	aliceDoc = jsValue(t, publicDoc(fednode.Address{User: "alice", Domain: "a.example"}, p))
	message = find("the message", "(?s)The `e2e` member of the message \\(JSON\\):\n\n```json\n(.*?)\n```", doc)
	backup = find("the backup", "(?s)Backup \\(JSON, deterministic given the values above\\):\n\n```json\n(.*?)\n```", doc)
	return aliceDoc, message, backup
}

// TestWebUIE2EProtocolVectors: the page restores alice's keys from the
// backup of PROTOCOL §5.9 and opens the message published there, as its
// sender's other device would.
func TestWebUIE2EProtocolVectors(t *testing.T) {
	aliceDoc, message, backup := protocolVectors(t)
	page := vectorPage(t)
	var got struct {
		Content string
		Tags    []string
		Wrong   string
		ZeroSig string
	}
	page.evalJSON("open the vectors", `const addr = 'alice@a.example', pub = await E.publicKeys(`+aliceDoc+`, addr);
		const keys = await E.openBackup(addr, pub, `+backup+`, 'correct horse battery staple');
		let wrong = '';
		try { await E.openBackup(addr, pub, `+backup+`, 'correct horse battery stapler') } catch (e) { wrong = e.code }
		const m = { id: '01KBQ8E2E0ABCDEFGHJKMNPQRS', from: addr, to: 'bob@b.example', e2e: `+message+` };
		const o = await E.open(m, keys, pub);
		let zeroSig = '';
		try { await E.open({ ...m, e2e: { ...m.e2e, signature: E.b64(new Uint8Array(64)) } }, keys, pub) } catch (e) { zeroSig = e.code }
		return { Content: o.content, Tags: o.tags, Wrong: wrong, ZeroSig: zeroSig }`, &got)
	if got.Content != "Hello, Bob! Only you can read this. Grüße." || strings.Join(got.Tags, ",") != "greeting,e2e" {
		t.Fatalf("the page opened the vector as %q %v", got.Content, got.Tags)
	}
	if got.Wrong != "wrong_passphrase" || got.ZeroSig != "bad_signature" {
		t.Fatalf("a wrong passphrase: %q; a zero signature: %q", got.Wrong, got.ZeroSig)
	}
}

// sealRaw seals plain, any JSON, as an E2E message from own to recipient
// (and own), as a client would: for plaintexts e2e.Seal does not make.
func sealRaw(t *testing.T, id string, from, to fednode.Address, plain []byte, recipient *e2e.PublicKeys, own *e2e.Keys) *fednode.E2E {
	t.Helper()
	dataKey, err := fcrypto.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, fednode.E2ENonceLen)
	rand.Read(nonce)
	e := &fednode.E2E{V: fednode.E2EVersion, SigKey: own.Public().SigKeyID(), Nonce: nonce}
	var ids []string
	for _, p := range []*e2e.PublicKeys{recipient, own.Public()} {
		w, err := fcrypto.WrapKey(p.Enc, dataKey)
		if err != nil {
			t.Fatal(err)
		}
		e.Keys = append(e.Keys, fednode.E2EKey{KeyID: p.EncKeyID(), Wrapped: w})
		ids = append(ids, p.EncKeyID())
	}
	e.Ciphertext = gcmSeal(t, dataKey, nonce, plain, fednode.E2EAAD(id, from, to, e.SigKey, ids))
	if err := e2e.Sign(id, from, to, e, own.Sig); err != nil {
		t.Fatal(err)
	}
	return e
}

func gcmSeal(t *testing.T, key, nonce, plain, aad []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead.Seal(nil, nonce, plain, aad)
}

// docOf is a key document of raw SPKI keys, with their true ids.
func docOf(addr fednode.Address, enc, sig []byte) string {
	encID, sigID := fednode.KeyID(enc), fednode.KeyID(sig)
	b, _ := json.Marshal(map[string]any{"address": addr.String(), "enc_key": enc, "sig_key": sig, "enc_key_id": encID, "sig_key_id": sigID,
		"fingerprint": fednode.Fingerprint(encID, sigID), "created_at": time.Now().UTC().Format(time.RFC3339Nano)})
	return string(b)
}

// der is the DER a marshal function made; it cannot fail on a key the
// test made.
func der(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func spki(pub any) []byte { return der(x509.MarshalPKIXPublicKey(pub)) }
func pkcs8(k any) []byte  { return der(x509.MarshalPKCS8PrivateKey(k)) }

// TestWebUIE2EClientRules: the page applies Go's rules, byte for byte,
// where they decide what is shown or trusted: the blank-content rule, the
// key kinds, the payload's structure, plaintexts without tags, the
// backup's salt bound and contents, passphrase normalisation, and the pins
// that keep a contact's earlier signing keys with the date they ended.
func TestWebUIE2EClientRules(t *testing.T) {
	page := vectorPage(t)
	alice := fednode.Address{User: "alice", Domain: "a.example"}
	bob := fednode.Address{User: "bob", Domain: "b.example"}

	{ // blank is Go's unicode.IsSpace
		var jsBlank []int
		page.evalJSON("blank code points", `const out = [];
			for (let c = 1; c < 0x10000; c++) {
				if (c >= 0xd800 && c < 0xe000) continue;
				try { E.checkContent(String.fromCharCode(c)) } catch (e) { if (e.code === 'invalid_content') out.push(c) }
			}
			return out`, &jsBlank)
		var goBlank []int
		for c := rune(1); c < 0x10000; c++ {
			if (c < 0xd800 || c >= 0xe000) && strings.TrimSpace(string(c)) == "" {
				goBlank = append(goBlank, int(c))
			}
		}
		if jsBlank, goBlank := jsValue(t, jsBlank), jsValue(t, goBlank); jsBlank != goBlank {
			t.Errorf("blank code points: the page's %s, Go's %s", jsBlank, goBlank)
		}
		var got []string
		page.evalJSON("content rules", `return ['\ufeff', '\u0085 ', ' \u200b '].map(s => { try { return E.checkContent(s) === s ? 'ok' : 'changed' } catch (e) { return e.code } })`, &got)
		for i, s := range []string{"\ufeff", "\u0085 ", " \u200b "} {
			_, err := fednode.NormalizeContent(s)
			if want := map[bool]string{true: "ok", false: "invalid_content"}[err == nil]; got[i] != want {
				t.Errorf("content %q: the page says %s, Go %v", s, got[i], err)
			}
		}
	}

	aliceKeys, bobKeys := newE2EKeys(t), newE2EKeys(t)
	alicePub, bobPub := aliceKeys.Public(), bobKeys.Public()
	aliceDoc := docOf(alice, alicePub.EncSPKI, alicePub.SigSPKI)
	page.evalJSON("bob's keys in the page", `window.bob = await E.importPrivate(E.unb64(`+jsValue(t, bobPub.EncSPKI)+`), E.unb64(`+jsValue(t, bobPub.SigSPKI)+`), E.unb64(`+
		jsValue(t, pkcs8(bobKeys.Enc))+`), E.unb64(`+jsValue(t, pkcs8(bobKeys.Sig))+`)); return null`, nil)

	{ // key kinds
		small, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e3 := &rsa.PublicKey{N: alicePub.Enc.N, E: 3}
		for name, doc := range map[string]string{
			"RSA-2048":      docOf(alice, spki(&small.PublicKey), alicePub.SigSPKI),
			"exponent 3":    docOf(alice, spki(e3), alicePub.SigSPKI),
			"P-384":         docOf(alice, alicePub.EncSPKI, spki(&p384.PublicKey)),
			"sig as enc":    docOf(alice, alicePub.SigSPKI, alicePub.SigSPKI),
			"enc as signer": docOf(alice, alicePub.EncSPKI, alicePub.EncSPKI),
		} {
			if fednode.CheckPublicKeys(mustKey(t, doc, "enc_key"), mustKey(t, doc, "sig_key")) == nil {
				t.Fatalf("%s: Go accepts it", name)
			}
			var code string
			page.evalJSON(name, `try { await E.publicKeys(`+doc+`, `+js(alice.String())+`); return 'accepted' } catch (e) { return e.code }`, &code)
			if code != "bad_key_kind" {
				t.Errorf("a key document (%s): %q, want bad_key_kind", name, code)
			}
		}
		var code string
		page.evalJSON("the right kinds", `try { await E.publicKeys(`+aliceDoc+`, `+js(alice.String())+`); return 'accepted' } catch (e) { return e.code }`, &code)
		if code != "accepted" {
			t.Fatalf("alice's document: %q", code)
		}
	}

	id := fednode.NewID(time.Now())
	msgJS := func(e *fednode.E2E) string {
		return jsValue(t, map[string]any{"id": id, "from": alice.String(), "to": bob.String(), "e2e": e})
	}
	openJS := func(what, msg string) (out struct {
		Content string
		Tags    []string
		Code    string
	}) {
		page.evalJSON(what, `try { return await E.open(`+msg+`, window.bob, await E.publicKeys(`+aliceDoc+`, `+js(alice.String())+`)) } catch (e) { return { code: e.code } }`, &out)
		return out
	}

	{ // plaintext without tags
		for _, plain := range []string{`{"content":"no tags here"}`, `{"content":"no tags here","tags":null}`} {
			e := sealRaw(t, id, alice, bob, []byte(plain), bobPub, aliceKeys)
			if content, tags, err := e2e.Open(id, alice, bob, e, bobKeys, alicePub); err != nil || content != "no tags here" || len(tags) != 0 {
				t.Fatalf("Go opens %s as %q %v %v", plain, content, tags, err)
			}
			if o := openJS(plain, msgJS(e)); o.Code != "" || o.Content != "no tags here" || len(o.Tags) != 0 || o.Tags == nil {
				t.Errorf("the page opens %s as %+v", plain, o)
			}
		}
		e := sealRaw(t, id, alice, bob, []byte(`{"content":"x","tags":[],"more":1}`), bobPub, aliceKeys)
		if o := openJS("an unknown member", msgJS(e)); o.Code != "malformed" {
			t.Errorf("the page opens a plaintext with an unknown member: %+v", o)
		}
	}

	{ // structure before cryptography
		good, err := e2e.Seal(id, alice, bob, "structure", nil, []*e2e.PublicKeys{bobPub}, aliceKeys)
		if err != nil {
			t.Fatal(err)
		}
		if o := openJS("the good one", msgJS(good)); o.Code != "" || o.Content != "structure" {
			t.Fatalf("the page opens the well-formed message as %+v", o)
		}
		spare := fednode.E2EKey{KeyID: fednode.KeyID([]byte("spare")), Wrapped: make([]byte, fednode.E2EWrappedLen)}
		for name, bend := range map[string]func(e *fednode.E2E){
			"an 11-byte nonce":       func(e *fednode.E2E) { e.Nonce = e.Nonce[:11] },
			"a 63-byte signature":    func(e *fednode.E2E) { e.Signature = e.Signature[:63] },
			"a 511-byte wrapped key": func(e *fednode.E2E) { e.Keys[0].Wrapped = e.Keys[0].Wrapped[:511] },
			"a key id twice":         func(e *fednode.E2E) { e.Keys = append(e.Keys, e.Keys[0]) },
			"five keys": func(e *fednode.E2E) {
				for i := 0; len(e.Keys) < 5; i++ {
					k := spare
					k.KeyID = fednode.KeyID([]byte{byte(i)})
					e.Keys = append(e.Keys, k)
				}
			},
			"no keys":            func(e *fednode.E2E) { e.Keys = nil },
			"a bad key id":       func(e *fednode.E2E) { e.Keys[0].KeyID = "short" },
			"a bad sig_key":      func(e *fednode.E2E) { e.SigKey = "short" },
			"a short ciphertext": func(e *fednode.E2E) { e.Ciphertext = e.Ciphertext[:16] },
		} {
			e := *good
			e.Keys = append([]fednode.E2EKey(nil), good.Keys...)
			bend(&e)
			if e.Validate() == nil {
				t.Fatalf("%s: Go's Validate accepts it", name)
			}
			if o := openJS(name, msgJS(&e)); o.Code != "malformed" {
				t.Errorf("a payload with %s: %+v, want malformed", name, o)
			}
		}
	}

	{ // backup
		const pass = "caf\u00e9 cr\u00e8me passphrase"
		b, err := e2e.WrapBackup(pass, alice, aliceKeys)
		if err != nil {
			t.Fatal(err)
		}
		open := func(what string, b *fednode.KeyBackup, pass string) (code string) {
			page.evalJSON(what, `try { const k = await E.openBackup(`+js(alice.String())+`, await E.publicKeys(`+aliceDoc+`, `+js(alice.String())+`), `+
				jsValue(t, b)+`, `+js(pass)+`); return k.fingerprint } catch (e) { return e.code }`, &code)
			return code
		}
		// NFC: the decomposed spelling opens what the composed one sealed.
		if got := open("decomposed passphrase", b, "cafe\u0301 cre\u0300me passphrase"); got != alicePub.Fingerprint() {
			t.Errorf("the passphrase in decomposed form: %q", got)
		}
		long := *b
		long.Salt = make([]byte, fednode.BackupMaxSalt+1)
		if long.Validate() == nil {
			t.Fatal("Go accepts a 65-byte salt")
		}
		if got := open("a 65-byte salt", &long, pass); got != "bad_backup" {
			t.Errorf("a 65-byte salt: %q, want bad_backup", got)
		}
		// A backup whose AAD names alice's keys but that holds bob's.
		plain, err := e2e.MarshalPrivate(bobKeys)
		if err != nil {
			t.Fatal(err)
		}
		other := *b
		kek, err := pbkdf2.Key(sha256.New, pass, other.Salt, other.Iterations, 32)
		if err != nil {
			t.Fatal(err)
		}
		other.Ciphertext = gcmSeal(t, kek, other.Nonce, plain, e2e.BackupAAD(alice, alicePub.EncKeyID(), alicePub.SigKeyID()))
		if _, err := e2e.UnwrapBackup(pass, alice, alicePub.EncKeyID(), alicePub.SigKeyID(), &other); err == nil {
			t.Fatal("Go restores a backup of other keys")
		}
		if got := open("other keys", &other, pass); got != "bad_backup" {
			t.Errorf("a backup of other keys: %q, want bad_backup", got)
		}
	}

	{ // id time
		id := fednode.NewID(time.Now())
		var ms int64
		page.evalJSON("idTime", `return E.idTime(`+js(id)+`)`, &ms)
		if want, _ := fednode.IDTime(id); ms != want.UnixMilli() {
			t.Fatalf("idTime(%s) = %d, Go's %d", id, ms, want.UnixMilli())
		}
	}

	{ // pins keep earlier keys
		carol := newE2EKeys(t).Public()
		var got struct {
			Until, Current, After, State string
		}
		page.evalJSON("pins", `const me = 'me@x.example', who = `+js(alice.String())+`;
			const a = { ...(await E.publicKeys(`+aliceDoc+`, who)), createdAt: '2026-01-01T00:00:00Z' };
			const c = { ...(await E.publicKeys(`+docOf(alice, carol.EncSPKI, carol.SigSPKI)+`, who)), createdAt: '2026-02-01T00:00:00Z' };
			E.forgetPins(me);
			E.trust(me, who, a);
			E.pin(me, who, c);
			const until = E.pinnedSigner(me, who, a.sigID).until, current = E.pinnedSigner(me, who, c.sigID).until;
			E.unpin(me, who);
			const after = E.pinnedSigner(me, who, c.sigID) ? 'kept' : 'lost';
			const state = E.trust(me, who, a).state + '/' + (E.pinnedSigner(me, who, a.sigID) ? 'a' : '') + (E.pinnedSigner(me, who, c.sigID) ? 'c' : '');
			E.forgetPins(me);
			return { Until: until, Current: current, After: after, State: state }`, &got)
		if got.Until != "2026-02-01T00:00:00Z" || got.Current != "" || got.After != "kept" || got.State != "new/ac" {
			t.Fatalf("pins: %+v", got)
		}
	}

	if p := page.takeProblems(); len(p) > 0 {
		t.Fatalf("the page reported: %v", p)
	}
}

func mustKey(t *testing.T, doc, name string) []byte {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(d[name].(string))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
