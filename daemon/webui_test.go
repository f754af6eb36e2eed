package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/web"
)

// The browser tests drive Debian's Chromium (installed by `make tools`)
// through the DevTools protocol against real nodes: what a person sees and
// does on the web client (package web).

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts one headless Chromium for a test, with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if testing.Short() {
			t.Skip("no Chromium (make tools installs it); skipped under -short")
		}
		t.Fatalf("the browser tests need %s: run make tools (apt-get install chromium)", chromiumPath)
	}
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 760),
	)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return browser
}

// tab is one browser context (its own storage) with one page, whose console
// errors, exceptions and policy violations are recorded.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu       sync.Mutex
	problems []string
}

func newTab(t *testing.T, browser context.Context, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, name: name, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // open the tab
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			text := string(m.Type) + ": " + m.Text
			// A 404 of an endpoint an older node lacks is a network log
			// entry the client handles; everything else at error level,
			// and any policy violation, is a problem.
			bad := m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Content-Security-Policy") ||
				(m.Type == chromedp.ConsoleError && !strings.Contains(m.Text, "Failed to load resource") && !strings.Contains(m.Text, "WebSocket connection"))
			if bad {
				tb.mu.Lock()
				tb.problems = append(tb.problems, text)
				tb.mu.Unlock()
			}
		}
	}()
	return tb
}

func (tb *tab) takeProblems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	p := tb.problems
	tb.problems = nil
	return p
}

// do runs actions with a deadline, failing the test with what it was doing.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v (page problems: %v)", tb.name, what, err, tb.takeProblems())
	}
}

// eval evaluates a JavaScript expression for its boolean value.
func (tb *tab) eval(expr string) bool {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
	if err != nil {
		tb.t.Fatalf("%s: eval %s: %v", tb.name, expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds.
func (tb *tab) waitFor(what, expr string, within time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(within)
	for !tb.eval(expr) {
		if time.Now().After(deadline) {
			tb.t.Fatalf("%s: waited %s for %s (%s); page problems: %v", tb.name, within, what, expr, tb.takeProblems())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot saves the page as docs/screenshots/NAME.png when
// FEDNODE_SCREENSHOTS names the folder (make screenshots).
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	dir := os.Getenv("FEDNODE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if name != "phone" { // the phone shot shows the conversation's end
		tb.eval(`window.scrollTo(0, 0) || true`)
	}
	time.Sleep(200 * time.Millisecond) // let a live update paint
	buf, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string { return fmt.Sprintf("%q", s) }

// messageShown is a condition: the open conversation shows content.
func messageShown(content string) string {
	return `[...document.querySelectorAll('#thread li .body')].some(e => e.textContent === ` + js(content) + `)`
}

// statusOf is a condition: my message with content has the delivery status.
func statusOf(content, status string) string {
	return `[...document.querySelectorAll('#thread li')].some(li => li.querySelector('.body').textContent === ` + js(content) +
		` && li.querySelector('[data-status]') && li.querySelector('[data-status]').dataset.status === ` + js(status) + `)`
}

const waitLive = 20 * time.Second

// TestWebUITwoNodes is the web client as two people use it: alice on node A
// and bob on node B, each in their own browser context.
func TestWebUITwoNodes(t *testing.T) {
	alloc := newBrowser(t)
	a, b := startNode(t, fastRetry), startNode(t, fastRetry)
	a.register("alice", "password-alice")
	a.register("carol", "password-carol")
	a.promote("alice") // the admin page is hers
	alice := "alice@" + a.srv.Domain()
	bobAddr := "bob@" + b.srv.Domain()

	// The page and its assets carry the page policy; the API keeps its own.
	for _, p := range []string{"/", "/assets/app.js", "/assets/e2e.js", "/assets/app.css", "/assets/pow.js"} {
		resp, err := http.Get(a.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != web.PageCSP {
			t.Fatalf("GET %s: %d, CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	if r := a.do("GET", "/api/me", "", nil); strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src") {
		t.Fatalf("the API's policy was loosened: %q", r.Header.Get("Content-Security-Policy"))
	}
	for _, p := range []string{"/assets/nope.js", "/assets/..%2fweb.go", "/api/..%2f", "/nothing"} {
		if r := a.do("GET", p, "", nil); r.Status != 404 || r.code() != "not_found" {
			t.Fatalf("GET %s: %d %s, want the JSON 404", p, r.Status, r.Raw)
		}
	}

	// Bob registers on B with the form.
	tb := newTab(t, alloc, "bob")
	tb.do("open the registration", chromedp.Navigate(b.url+"/#/register"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	tb.do("fill the registration",
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "bob"),
		chromedp.SendKeys(chromedp.CSS(`input[name=new-password]`), "password-bob"))
	tb.screenshot("register")
	tb.do("register", chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	tb.waitFor("bob logged in", `document.getElementById('me') && document.getElementById('me').textContent === `+js(bobAddr), waitLive)
	tb.waitFor("bob's socket", `document.getElementById('conn').dataset.state === 'live'`, waitLive)

	// Alice logs in on A with the keyboard alone: focus starts in the form.
	ta := newTab(t, alloc, "alice")
	ta.do("open the login", chromedp.Navigate(a.url+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	ta.waitFor("focus on the username", `document.activeElement && document.activeElement.name === 'username'`, 5*time.Second)
	ta.do("log in by keyboard", chromedp.KeyEvent("alice\tpassword-alice\r"))
	ta.waitFor("alice logged in", `document.getElementById('me') && document.getElementById('me').textContent === `+js(alice), waitLive)
	ta.waitFor("alice's socket", `document.getElementById('conn').dataset.state === 'live'`, waitLive)

	// The composer refuses what the server would, in words.
	ta.do("open a conversation with bob",
		chromedp.SendKeys(chromedp.CSS(`input[name=to]`), bobAddr+"\r"),
		chromedp.WaitVisible(chromedp.CSS(`form.composer textarea`)))
	ta.do("write with a bad tag",
		chromedp.SendKeys(chromedp.CSS(`form.composer textarea`), "tagged"),
		chromedp.SendKeys(chromedp.CSS(`form.composer input[name=tags]`), "ok, Ok"),
		chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
	ta.waitFor("the duplicate tag explained", `document.querySelector('form.composer .error').textContent.includes('twice')`, 5*time.Second)
	ta.eval(`document.querySelector('form.composer').reset() || true`)

	// Alice writes; bob's page shows it live, unread in his list.
	send := func(tt *tab, content string) {
		t.Helper()
		tt.do("send "+content,
			chromedp.SendKeys(chromedp.CSS(`form.composer textarea`), content),
			chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
		tt.waitFor("sent "+content, messageShown(content), waitLive)
	}
	send(ta, "hello bob, from the browser")
	tb.waitFor("alice in bob's list, unread", `!!document.querySelector('#conversations li[data-with=`+js(alice)+`] [data-unread="1"]')`, waitLive)
	tb.screenshot("conversations")
	ta.waitFor("alice's message delivered", statusOf("hello bob, from the browser", "delivered"), waitLive)

	// Bob opens it and answers; alice sees the answer live.
	tb.do("bob opens the conversation", chromedp.Click(chromedp.CSS(`#conversations li[data-with=`+js(alice)+`] a`)))
	tb.waitFor("bob reads alice", messageShown("hello bob, from the browser"), waitLive)
	send(tb, "hi alice")
	ta.waitFor("bob's answer at alice", messageShown("hi alice"), waitLive)
	ta.screenshot("conversation")

	// A reload keeps the conversation.
	ta.do("reload", chromedp.Reload())
	ta.waitFor("the conversation after a reload", messageShown("hi alice")+` && `+statusOf("hello bob, from the browser", "delivered"), waitLive)
	ta.waitFor("alice's socket after the reload", `document.getElementById('conn').dataset.state === 'live'`, waitLive)

	// Node B goes down while both pages are open: alice's message waits
	// queued, then arrives at bob when B is back, and bob's socket catches up.
	if err := b.srv.Close(); err != nil {
		t.Fatal(err)
	}
	b.srv = nil
	tb.waitFor("bob's page notices the drop", `document.getElementById('conn').dataset.state === 'down'`, waitLive)
	send(ta, "sent while B was down")
	ta.waitFor("queued while B is down", statusOf("sent while B was down", "queued"), waitLive)
	b.open()
	tb.waitFor("bob's socket back", `document.getElementById('conn').dataset.state === 'live'`, waitLive)
	tb.waitFor("the message sent during the outage", messageShown("sent while B was down"), waitLive)
	ta.waitFor("delivered after the restart", statusOf("sent while B was down", "delivered"), waitLive)

	// Bob blocks alice: her next message is refused and never shown.
	if r := b.do("GET", "/api/blocks", b.login("bob", "password-bob"), nil); r.Status == 404 {
		t.Log("this node has no /api/blocks yet: the block scenario is not run")
	} else {
		tb.do("bob blocks alice", chromedp.Click(chromedp.Search(`//button[text()="Block `+alice+`"]`)))
		tb.waitFor("the block confirmed", `document.querySelector('#thread').parentElement.querySelector('.ok') !== null`, waitLive)
		send(ta, "you should not see this")
		ta.waitFor("refused for alice", statusOf("you should not see this", "failed"), waitLive)
		time.Sleep(500 * time.Millisecond)
		if tb.eval(messageShown("you should not see this")) {
			t.Fatal("a blocked sender's message appeared")
		}
	}

	// The other screens render without a problem.
	ta.do("privacy", chromedp.Navigate(a.url+"/#/privacy"), chromedp.WaitVisible(chromedp.CSS(`form.card button.danger`)))
	ta.screenshot("privacy")
	ta.do("admin", chromedp.Navigate(a.url+"/#/admin"), chromedp.WaitVisible(chromedp.CSS(`tr[data-user=carol]`)))
	ta.screenshot("admin")
	ta.do("suspend carol", chromedp.SendKeys(chromedp.CSS(`input[name=reason]`), "spam"), chromedp.Click(chromedp.Search(`//button[@aria-label="Suspend carol"]`)))
	ta.waitFor("carol suspended", `document.querySelector('tr[data-user=carol]').textContent.includes('suspended (spam)')`, waitLive)
	if r := a.do("POST", "/api/auth/login", "", map[string]any{"username": "carol", "password": "password-carol"}); r.code() != "account_suspended" {
		t.Fatalf("carol's login after the page suspended her: %d %s", r.Status, r.Raw)
	}
	ta.do("unsuspend carol", chromedp.Click(chromedp.Search(`//button[@aria-label="Unsuspend carol"]`)))
	ta.waitFor("carol active", `document.querySelector('tr[data-user=carol]').textContent.includes('active')`, waitLive)
	ta.do("create an invite", chromedp.Click(chromedp.Search(`//button[text()="Create invites"]`)))
	ta.waitFor("an unused invite listed", `[...document.querySelectorAll('td')].some(td => td.textContent === 'unused')`, waitLive)
	ta.do("phone width", chromedp.EmulateViewport(375, 740), chromedp.Navigate(a.url+"/#/c/"+url.PathEscape(bobAddr)))
	ta.waitFor("the conversation on a phone", messageShown("hi alice")+` && document.documentElement.scrollWidth <= 375`, waitLive)
	ta.screenshot("phone")

	// No page broke the policy or threw.
	for _, tt := range []*tab{ta, tb} {
		if p := tt.takeProblems(); len(p) > 0 {
			t.Fatalf("%s's page reported: %v", tt.name, p)
		}
	}

	// The policy is enforced: an injected inline script does not run, and the
	// browser reports the violation.
	ta.eval(`(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.append(s); return true })()`)
	ta.waitFor("the inline script blocked", `window.__inline === undefined`, time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := ta.takeProblems()
		if len(p) > 0 && strings.Contains(strings.Join(p, " "), "Content") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an inline script was injected and the browser reported no policy violation")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWebUIOneUserScreens: registration with the proof of work, errors in
// words, older pages, deleting a message, blocks, logging out everywhere
// and deleting the account, through the page.
func TestWebUIOneUserScreens(t *testing.T) {
	browser := newBrowser(t)
	n := startNode(t, func(c *daemon.Config) {
		c.ChallengeAfterRegistrations = 0 // every registration needs a solved challenge
		c.ChallengeMaxNumber = 20000
	})
	eve := n.user("eve")
	dora := "dora@" + n.srv.Domain()
	evesAddr := "eve@" + n.srv.Domain()

	d := newTab(t, browser, "dora")
	d.do("open the registration", chromedp.Navigate(n.url+"/#/register"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	d.do("register with the keyboard",
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "dora"),
		chromedp.SendKeys(chromedp.CSS(`input[name=new-password]`), "password-dora\r"))
	d.waitFor("dora logged in after the challenge", `document.getElementById('me') && document.getElementById('me').textContent === `+js(dora), waitLive)

	// Eve writes 60 messages while dora's page is open.
	for i := 0; i < 60; i++ {
		n.send(eve, "dora", fmt.Sprintf("note %02d", i))
	}
	d.waitFor("60 unread from eve", `!!document.querySelector('#conversations li[data-with=`+js(evesAddr)+`] [data-unread="60"]')`, waitLive)
	d.do("open eve", chromedp.Click(chromedp.CSS(`#conversations li[data-with=`+js(evesAddr)+`] a`)))
	d.waitFor("the newest page", `document.querySelectorAll('#thread li').length === 50 && !document.getElementById('older').hidden`, waitLive)
	d.do("load older", chromedp.Click(chromedp.CSS(`#older`)))
	d.waitFor("all 60, oldest first", `document.querySelectorAll('#thread li').length === 60 && document.querySelector('#thread li .body').textContent === 'note 00'`, waitLive)
	d.waitFor("read", `!document.querySelector('#conversations [data-unread]')`, waitLive)

	// Delete one from my view.
	d.do("delete note 00", chromedp.Click(chromedp.CSS(`#thread li .meta button`)))
	d.waitFor("note 00 gone", `document.querySelectorAll('#thread li').length === 59 && !`+messageShown("note 00"), waitLive)
	if box := n.mailbox(n.login("dora", "password-dora")); len(box) != 59 {
		t.Fatalf("dora's mailbox after the delete: %d messages", len(box))
	}

	// The server's refusal in words.
	d.do("write to nobody", chromedp.Navigate(n.url+"/#/c/"+url.PathEscape("nobody@"+n.srv.Domain())), chromedp.WaitVisible(chromedp.CSS(`form.composer textarea`)))
	d.do("send to nobody",
		chromedp.SendKeys(chromedp.CSS(`form.composer textarea`), "anyone?"),
		chromedp.Click(chromedp.CSS(`form.composer button[type=submit]`)))
	d.waitFor("unknown_recipient in words", `document.querySelector('form.composer .error').textContent === 'There is no such user.'`, waitLive)

	// Block eve on the privacy page, then unblock her.
	d.do("privacy", chromedp.Navigate(n.url+"/#/privacy"), chromedp.WaitVisible(chromedp.CSS(`input[name=target]`)))
	d.do("block eve", chromedp.SendKeys(chromedp.CSS(`input[name=target]`), "eve\r"))
	d.waitFor("eve listed", `document.getElementById('blocks') && document.getElementById('blocks').textContent.includes(`+js(evesAddr)+`)`, waitLive)
	if r := n.do("POST", "/api/messages", eve, map[string]any{"to": "dora", "content": "blocked?"}); r.code() != "recipient_refused" {
		t.Fatalf("a send from a blocked sender: %d %s", r.Status, r.Raw)
	}
	d.do("unblock eve", chromedp.Click(chromedp.CSS(`#blocks button`)))
	d.waitFor("nobody blocked", `!document.getElementById('blocks')`, waitLive)

	// Log out everywhere: this page's token and any other are revoked.
	other := n.login("dora", "password-dora")
	d.do("log out everywhere", chromedp.Click(chromedp.Search(`//button[text()="Log out everywhere"]`)))
	d.waitFor("the login page", `!!document.querySelector('input[name=username]') && !document.getElementById('me')`, waitLive)
	if r := n.do("GET", "/api/me", other, nil); r.Status != 401 {
		t.Fatalf("another session after logging out everywhere: %d", r.Status)
	}

	// Delete the account with the password.
	d.do("log in again",
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "dora"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "password-dora\r"))
	d.waitFor("logged in", `!!document.getElementById('me')`, waitLive)
	d.do("privacy", chromedp.Navigate(n.url+"/#/privacy"), chromedp.WaitVisible(chromedp.CSS(`form.card button.danger`)))
	d.do("delete with a wrong password",
		chromedp.SendKeys(chromedp.CSS(`form.card input[name=password]`), "not-the-password"),
		chromedp.Click(chromedp.CSS(`input[name=sure]`)),
		chromedp.Click(chromedp.CSS(`form.card button.danger`)))
	d.waitFor("refused in words", `document.querySelector('form.card .error').textContent === 'Wrong username or password.'`, waitLive)
	d.eval(`(() => { document.querySelector('form.card input[name=password]').value = ''; return true })()`)
	d.do("delete", chromedp.SendKeys(chromedp.CSS(`form.card input[name=password]`), "password-dora"), chromedp.Click(chromedp.CSS(`form.card button.danger`)))
	d.waitFor("logged out", `!!document.querySelector('input[name=username]') && !document.getElementById('me')`, waitLive)
	if r := n.do("POST", "/api/auth/login", "", map[string]any{"username": "dora", "password": "password-dora"}); r.Status != 401 {
		t.Fatalf("login after deleting the account: %d %s", r.Status, r.Raw)
	}
	if p := d.takeProblems(); len(p) > 0 {
		t.Fatalf("the page reported: %v", p)
	}
}
