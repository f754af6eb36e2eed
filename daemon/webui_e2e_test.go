package daemon_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fednode/fednode"
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

// notIn fails the test if any file under dir, or the log, holds secret.
func notIn(t *testing.T, secret string, dir string, log *syncbuf.Buffer) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the end-to-end encrypted text", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), secret) {
		t.Error("the node's log holds the end-to-end encrypted text")
	}
}

// TestWebUIE2E is end-to-end encryption as two people use it in the web
// client, alice on node A and bob on node B: keys made in the browser,
// a message only the browsers can read, a second browser restored from
// the backup, and a key change that holds sending until it is accepted.
func TestWebUIE2E(t *testing.T) {
	browser := newBrowser(t)
	logA, logB := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	// alice's node keeps "bob has no keys" for a second, not 30, so that
	// her page sees his keys as soon as he makes them.
	shortNotFound := func(c *daemon.Config) { c.PeerUserKeysNotFoundTTL = time.Second }
	a, b := startNode(t, fastRetry, logTo{logA}, shortNotFound), startNode(t, fastRetry, logTo{logB}, shortNotFound)
	a.register("alice", "password-alice")
	b.register("bob", "password-bob")
	alice, bob := "alice@"+a.srv.Domain(), "bob@"+b.srv.Domain()

	ta, tb := newTab(t, browser, "alice"), newTab(t, browser, "bob")
	ta.logInPage(a.url, "alice", "password-alice", alice)
	tb.logInPage(b.url, "bob", "password-bob", bob)

	// Without keys, a conversation says why it is not encrypted.
	tb.do("bob opens alice", chromedp.Navigate(b.url+"/#/c/"+url.PathEscape(alice)))
	tb.waitFor("not encrypted: bob has no keys", `document.querySelector('[data-e2e=off]') && document.querySelector('[data-e2e=off]').textContent.includes('you have no keys')`, waitLive)

	// The passphrase is asked twice and must be long enough.
	ta.do("open Encryption", chromedp.Navigate(a.url+"/#/encryption"), chromedp.WaitVisible(chromedp.CSS(`#e2e-create input[name=new-passphrase]`)))
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
	canary := "canary " + fednode.NewID(time.Now()) + " only the browsers read"
	ta.do("send the canary",
		chromedp.SendKeys(chromedp.CSS(`form.composer textarea`), canary),
		chromedp.SendKeys(chromedp.CSS(`form.composer input[name=tags]`), "secret"),
		chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
	ta.waitFor("alice sees her message, locked", lockedShown(canary), waitLive)

	// Bob's page opens it.
	tb.do("bob opens alice", chromedp.Navigate(b.url+"/#/c/"+url.PathEscape(alice)))
	tb.waitFor("the canary in clear at bob, locked", lockedShown(canary), waitLive)
	tb.waitFor("encrypted with alice's fingerprint", `document.querySelector('[data-e2e=on] .fp') && document.querySelector('[data-e2e=on] .fp').textContent === `+js(aliceFP), waitLive)
	tb.screenshot("e2e-conversation")

	// The nodes carried it without reading it.
	box := b.mailbox(b.login("bob", "password-bob"))
	if len(box) != 1 || box[0]["content"] != "" || box[0]["e2e"] == nil {
		t.Fatalf("bob's mailbox through the API: %v", box)
	}
	a.srv.Close()
	b.srv.Close()
	notIn(t, canary, a.cfg.DataDir, logA)
	notIn(t, canary, b.cfg.DataDir, logB)
	a.open()
	b.open()
	ta.waitFor("alice's socket back", `document.getElementById('conn').dataset.state === 'live'`, waitLive)
	tb.waitFor("bob's socket back", `document.getElementById('conn').dataset.state === 'live'`, waitLive)

	// A second browser for bob: a wrong passphrase restores nothing, the
	// right one restores the keys, and the page then reads the canary.
	tb2 := newTab(t, browser, "bob's second browser")
	tb2.logInPage(b.url, "bob", "password-bob", bob)
	tb2.do("open Encryption", chromedp.Navigate(b.url+"/#/encryption"), chromedp.WaitVisible(chromedp.CSS(`#e2e-restore input[name=restore-passphrase]`)))
	tb2.do("a wrong passphrase",
		chromedp.SendKeys(chromedp.CSS(`#e2e-restore input[name=restore-passphrase]`), "not bob's passphrase"),
		chromedp.Click(chromedp.CSS(`#e2e-restore button[type=submit]`)))
	tb2.waitFor("wrong passphrase, in words", `document.querySelector('#e2e-restore .error').textContent.includes('Wrong passphrase')`, keygenWait)
	var stored bool
	tb2.evalJSON("nothing stored", `return (await E.loadKeys(`+js(bob)+`)) !== null`, &stored)
	if stored {
		t.Fatal("a wrong passphrase stored keys")
	}
	tb2.eval(`(document.querySelector('#e2e-restore input').value = '') || true`)
	tb2.do("the right passphrase",
		chromedp.SendKeys(chromedp.CSS(`#e2e-restore input[name=restore-passphrase]`), bobPass),
		chromedp.Click(chromedp.CSS(`#e2e-restore button[type=submit]`)))
	tb2.waitFor("restored", `document.getElementById('my-fp') && document.getElementById('my-fp').textContent === `+js(bobFP), keygenWait)
	tb2.do("open alice", chromedp.Navigate(b.url+"/#/c/"+url.PathEscape(alice)))
	tb2.waitFor("the canary in the second browser", lockedShown(canary), waitLive)

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
	tb.do("bob writes with his new keys",
		chromedp.SendKeys(chromedp.CSS(`form.composer textarea`), "from my new keys"),
		chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
	ta.waitFor("bob's new-key message, with a warning", `[...document.querySelectorAll('#thread li')].some(li => li.querySelector('.body').textContent === 'from my new keys' && li.querySelector('.e2e-warn'))`, waitLive)
	sent := len(b.mailbox(b.login("bob", "password-bob")))
	ta.do("send before accepting",
		chromedp.SendKeys(chromedp.CSS(`form.composer textarea`), "before accepting"),
		chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
	ta.waitFor("refused, in words", `document.querySelector('form.composer .error').textContent.includes('Accept new key')`, waitLive)
	if box := b.mailbox(b.login("bob", "password-bob")); len(box) != sent {
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
	browser := newBrowser(t)
	n := startNode(t)
	page := newTab(t, browser, "page")
	page.do("open the page", chromedp.Navigate(n.url+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	var got struct {
		Content string
		Tags    []string
		Wrong   string
		Moved   string
	}
	page.evalJSON("open the vectors", `const addr = 'alice@a.example', pub = await E.publicKeys(`+aliceDoc+`, addr);
		const keys = await E.openBackup(addr, pub, `+backup+`, 'correct horse battery staple');
		let wrong = '';
		try { await E.openBackup(addr, pub, `+backup+`, 'correct horse battery stapler') } catch (e) { wrong = e.code }
		const m = { id: '01KBQ8E2E0ABCDEFGHJKMNPQRS', from: addr, to: 'bob@b.example', e2e: `+message+` };
		const o = await E.open(m, keys, pub);
		let moved = '';
		try { await E.open({ ...m, e2e: { ...m.e2e, signature: E.b64(new Uint8Array(64)) } }, keys, pub) } catch (e) { moved = e.code }
		return { Content: o.content, Tags: o.tags, Wrong: wrong, Moved: moved }`, &got)
	if got.Content != "Hello, Bob! Only you can read this. Grüße." || strings.Join(got.Tags, ",") != "greeting,e2e" {
		t.Fatalf("the page opened the vector as %q %v", got.Content, got.Tags)
	}
	if got.Wrong != "wrong_passphrase" || got.Moved != "bad_signature" {
		t.Fatalf("a wrong passphrase: %q; a zero signature: %q", got.Wrong, got.Moved)
	}
}
