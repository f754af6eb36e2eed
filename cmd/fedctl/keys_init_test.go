package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFedctlKeysInitAnswers: keys init through a proxy that loses the
// node's answer to PUT /api/keys, refuses it, or drops it unsent. The
// device forgets the new keys only on a definite refusal (4xx); when the
// node stored them and only the answer was lost, init checks and succeeds.
func TestFedctlKeysInitAnswers(t *testing.T) {
	fixedE2EKeys(t)
	cfg := e2eNodeConfig(t)
	srv := openNode(t, cfg)
	defer srv.Close()
	target, _ := url.Parse(srv.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	var mode atomic.Value // "pass", "lose", "refuse", "drop"
	mode.Store("pass")
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := mode.Load().(string)
		if r.Method != http.MethodPut || r.URL.Path != "/api/keys" || m == "pass" {
			rp.ServeHTTP(w, r)
			return
		}
		switch m {
		case "lose": // the node acts; its answer is lost
			rp.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case "refuse":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"code":"invalid_user_keys","message":"refused by the test"}}`)
		case "drop":
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}
	}))
	defer proxy.Close()

	dir := t.TempDir()
	env := func(k string) string {
		switch k {
		case "FEDNODE_URL":
			return proxy.URL
		case "FEDCTL_TOKEN_FILE":
			return filepath.Join(dir, "token")
		case "FEDCTL_E2E_KEYS":
			return filepath.Join(dir, "e2e-keys.json")
		case "FEDCTL_KNOWN_KEYS":
			return filepath.Join(dir, "known-keys.json")
		}
		return ""
	}
	fedctl := func(stdin string, args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(stdin), &out, &bytes.Buffer{}, env)
		return out.String(), err
	}
	for _, cmd := range []string{"register", "login"} {
		if _, err := fedctl("password-alice\n", cmd, "alice"); err != nil {
			t.Fatal(err)
		}
	}

	// A backup passphrase shorter than 10 characters is refused before
	// anything is made or published.
	if _, err := fedctl("short pw\n", "keys", "init", "--backup"); err == nil || !strings.Contains(err.Error(), "at least 10") {
		t.Fatalf("a short passphrase: %v", err)
	}
	if _, err := fedctl("", "keys", "show"); err == nil || !strings.Contains(err.Error(), "not published") {
		t.Fatalf("a refused init published keys: %v", err)
	}

	mode.Store("lose")
	out, err := fedctl("", "keys", "init")
	if err != nil || !strings.Contains(out, "published") {
		t.Fatalf("init whose answer is lost after the node stored the keys: %q %v", out, err)
	}
	fp := fingerprint(t, out)
	if out, err := fedctl("", "keys", "show"); err != nil || !strings.Contains(out, "this device has the private keys") || !strings.Contains(out, fp) {
		t.Fatalf("after a lost answer the device must hold the published keys: %q %v", out, err)
	}

	mode.Store("refuse")
	if _, err := fedctl("", "keys", "init", "--replace"); err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("init refused by the node: %v", err)
	}
	if out, err := fedctl("", "keys", "show"); err != nil || !strings.Contains(out, "this device has the private keys") || !strings.Contains(out, fp) {
		t.Fatalf("after a refusal the device must hold its previous keys again: %q %v", out, err)
	}

	mode.Store("drop")
	if _, err := fedctl("", "keys", "init", "--replace"); err == nil || !strings.Contains(err.Error(), "does not show them published") {
		t.Fatalf("init whose request a 503 answered: %v", err)
	}
	if out, err := fedctl("", "keys", "show"); err != nil || !strings.Contains(out, "OTHER keys") {
		t.Fatalf("after an unconfirmed init the device keeps the new keys, and says they are not the published ones: %q %v", out, err)
	}
}

// TestUpdateJSONFileConcurrent: read-modify-writes of one pin file from
// many writers (a tail pinning a first sighting while keys trust runs)
// lose none of the changes.
func TestUpdateJSONFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known-keys.json")
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := updateJSONFile(path, func(m map[string]pin) { m[fmt.Sprintf("u%d-%d@x.example", w, i)] = pin{} }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	m, err := readJSONFile[pin](path)
	if err != nil || len(m) != writers*each {
		t.Fatalf("%d pins of %d: %v", len(m), writers*each, err)
	}
}
