package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/keys"
)

// mutate returns body with its first occurrence of old replaced by new,
// failing when old is absent (so a case cannot silently test nothing).
func mutate(t *testing.T, body []byte, old, new string) []byte {
	t.Helper()
	s := string(body)
	if !strings.Contains(s, old) {
		t.Fatalf("%q is not in %s", old, s)
	}
	return []byte(strings.Replace(s, old, new, 1))
}

// TestEnvelopeStrict: a member that differs only in case, a duplicate, an
// unknown or a missing member is refused at every depth of the envelope,
// never decoded "last one wins".
func TestEnvelopeStrict(t *testing.T) {
	kr := keyringOf(t, 0, 1)
	pubs, _ := kr.PublicKeys(context.Background())
	enc, _ := keys.CurrentKey(pubs, keys.UseEnc)
	env, err := SealMessages("a.example", Recipient{Domain: "b.example", EncKeyID: KeyID("b.example", enc.ID), EncKey: enc.Key},
		[]fednode.Message{{ID: fednode.NewID(time.Now()), From: fednode.Address{User: "a", Domain: "a.example"}, To: fednode.Address{User: "b", Domain: "b.example"}, Content: "x", CreatedAt: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(env)
	if _, err := DecodeEnvelope(good); err != nil {
		t.Fatalf("the good envelope: %v", err)
	}
	for name, body := range map[string][]byte{
		"From_node after from_node": mutate(t, good, `"to_node":`, `"From_node":"c.example","to_node":`),
		"VERSION":                   mutate(t, good, `"version":1`, `"version":1,"VERSION":1`),
		"Version instead":           mutate(t, good, `"version":1`, `"Version":1`),
		"duplicate from_node":       mutate(t, good, `"to_node":`, `"from_node":"c.example","to_node":`),
		"unknown member":            mutate(t, good, `"version":1`, `"version":1,"extra":true`),
		"missing to_node":           mutate(t, good, `"to_node":"b.example",`, ``),
		"key: Enc_key_id":           mutate(t, good, `"enc_key_id":`, `"Enc_key_id":"x","enc_key_id":`),
		"key: duplicate wrapped":    mutate(t, good, `"wrapped":`, `"wrapped":"AA==","wrapped":`),
		"key: missing id":           mutate(t, good, `{"id":"k-`, `{"x-id":"k-`),
		"message: FROM":             mutate(t, good, `"from":`, `"FROM":"eve@a.example","from":`),
		"message: duplicate to":     mutate(t, good, `"to":`, `"to":"eve@b.example","to":`),
		"message: missing nonce":    mutate(t, good, `"nonce":`, `"x-nonce":`),
		"lone surrogate":            mutate(t, good, `"from":"a@a.example"`, `"from":"a\udc00@a.example"`),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeEnvelope(body); err == nil {
				t.Fatalf("accepted %s", body)
			}
		})
	}
}

// TestPlaintextStrict: the sealed plaintext is held to the same rules; a
// message whose plaintext has a case-variant member fails to open.
func TestPlaintextStrict(t *testing.T) {
	kr := keyringOf(t, 0, 1)
	pubs, _ := kr.PublicKeys(context.Background())
	encKey, _ := keys.CurrentKey(pubs, keys.UseEnc)
	encKeyID := KeyID("b.example", encKey.ID)
	seal := func(pt string) (Envelope, EncryptedMessage) {
		dk, _ := fcrypto.NewDataKey()
		wrapped, _ := fcrypto.WrapKey(encKey.Key, dk)
		m := EncryptedMessage{ID: fednode.NewID(time.Now()), From: "a@a.example", To: "b@b.example", CreatedAt: time.Now().UTC().Format(TimeFormat), KeyID: "k-1"}
		var err error
		m.Nonce, m.Ciphertext, err = fcrypto.Seal(dk, bindingOf(m, encKeyID), []byte(pt))
		if err != nil {
			t.Fatal(err)
		}
		return Envelope{Version: 1, FromNode: "a.example", ToNode: "b.example", Keys: []WrappedKey{{ID: "k-1", EncKeyID: encKeyID, Wrapped: wrapped}}, Messages: []EncryptedMessage{m}}, m
	}
	env, m := seal(`{"content":"hi","tags":["t"]}`)
	if pt, err := OpenMessage(context.Background(), kr, env, m); err != nil || pt.Content != "hi" {
		t.Fatalf("good plaintext: %+v %v", pt, err)
	}
	env, m = seal(`{"content":"hi"}`)
	if pt, err := OpenMessage(context.Background(), kr, env, m); err != nil || pt.Content != "hi" || pt.Tags != nil {
		t.Fatalf("tags are optional: %+v %v", pt, err)
	}
	for _, pt := range []string{
		`{"content":"hi","Content":"evil"}`,
		`{"content":"hi","content":"evil"}`,
		`{"CONTENT":"evil"}`,
		`{"tags":[]}`,
		`{"content":"hi","tags":[],"extra":1}`,
		`{"content":"hi"} {}`,
	} {
		env, m := seal(pt)
		if got, err := OpenMessage(context.Background(), kr, env, m); err == nil {
			t.Errorf("%s opened as %+v", pt, got)
		}
	}
}

// TestNodeDocumentStrict: case variants, duplicates and unknown or missing
// members make a document unusable, at the top and in each key.
func TestNodeDocumentStrict(t *testing.T) {
	good := docFor(t, "b.example", 0, 1)
	if _, err := ParseNodeDocument(good, "b.example", "http", time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"Domain":               mutate(t, good, `"domain":"b.example"`, `"domain":"b.example","Domain":"b.example"`),
		"duplicate inbox":      mutate(t, good, `"inbox":`, `"inbox":"http://b.example/x","inbox":`),
		"PROTOCOL":             mutate(t, good, `"protocol":`, `"PROTOCOL":`),
		"key: Use":             mutate(t, good, `"use":"sig"`, `"use":"sig","Use":"enc"`),
		"key: missing created": mutate(t, good, `"created_at":`, `"x-created_at":`),
		"key: unknown":         mutate(t, good, `"use":"sig"`, `"use":"sig","extra":1`),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseNodeDocument(body, "b.example", "http", time.Now()); err == nil {
				t.Fatalf("accepted %s", body)
			}
		})
	}
}

// TestNodeDocumentMediaType: a document not served as JSON is refused as if
// the peer were unreachable.
func TestNodeDocumentMediaType(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"text/plain; charset=utf-8":       false,
		"text/html":                       false,
		"":                                false,
		"application/jsonx":               false,
	} {
		var domain string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{ct}
			w.Write(docFor(t, domain, 0, 1))
		}))
		domain = strings.TrimPrefix(srv.URL, "http://")
		d := NewDirectory(NewHTTPClient(ClientOptions{AllowPrivate: true}), "http", time.Hour, time.Minute, time.Now, nil)
		_, err := d.Peer(context.Background(), domain)
		srv.Close()
		if (err == nil) != ok {
			t.Errorf("Content-Type %q: %v", ct, err)
		}
	}
}

// TestAnswerStrict: a peer's inbox answer and error body are decoded
// strictly too.
func TestAnswerStrict(t *testing.T) {
	a, err := DecodeAnswer([]byte(`{"results":[{"id":"x","status":"accepted"},{"id":"y","status":"refused","code":"c","message":"m"}]}`))
	if err != nil || len(a.Results) != 2 || a.Results[1].Code != "c" {
		t.Fatalf("%+v %v", a, err)
	}
	for _, body := range []string{
		`{"results":[{"id":"x","status":"accepted","Status":"refused"}]}`,
		`{"results":[{"id":"x","status":"refused","status":"accepted"}]}`,
		`{"Results":[]}`,
		`{"results":[{"id":"x"}]}`,
		`{"results":[],"extra":1}`,
	} {
		if _, err := DecodeAnswer([]byte(body)); err == nil {
			t.Errorf("accepted %s", body)
		}
	}
	if c := ErrorCode([]byte(`{"error":{"code":"banned","message":"m"}}`)); c != "banned" {
		t.Fatalf("code %q", c)
	}
	if c := ErrorCode([]byte(`{"error":{"code":"banned","Code":"x","message":"m"}}`)); c != "" {
		t.Fatalf("a case-variant error body gave code %q", c)
	}
}
