package federation

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
)

func TestParseSignature(t *testing.T) {
	sig := base64.StdEncoding.EncodeToString([]byte("sig"))
	good := `keyId="a.example#sig-00112233445566778899aabbccddeeff",algorithm="hs2019",headers="(request-target) host date digest",signature="` + sig + `"`
	p, err := ParseSignature(good)
	if err != nil || p.KeyID != "a.example#sig-00112233445566778899aabbccddeeff" || len(p.Headers) != 4 || string(p.Signature) != "sig" {
		t.Fatalf("good header: %+v, %v", p, err)
	}
	if p, err := ParseSignature(`keyId="k", headers="date",  signature="` + sig + `", created=1700000000, x-unknown="y"`); err != nil || p.Created != 1700000000 {
		t.Fatalf("spaces, created and unknown params: %+v %v", p, err)
	}
	for name, h := range map[string]string{
		"empty":             "",
		"no keyId":          `headers="date",signature="` + sig + `"`,
		"no headers":        `keyId="k",signature="` + sig + `"`,
		"no signature":      `keyId="k",headers="date"`,
		"duplicate keyId":   good + `,keyId="other"`,
		"unquoted":          `keyId=k,headers="date",signature="` + sig + `"`,
		"unterminated":      `keyId="k,headers="date"`,
		"bad base64":        `keyId="k",headers="date",signature="!!!"`,
		"upper-case header": `keyId="k",headers="Date",signature="` + sig + `"`,
		"repeated header":   `keyId="k",headers="date date",signature="` + sig + `"`,
		"escape":            `keyId="k\"",headers="date",signature="` + sig + `"`,
		"no separator":      `keyId="k" headers="date",signature="` + sig + `"`,
		"too long":          `keyId="` + strings.Repeat("k", 5000) + `",headers="date",signature="` + sig + `"`,
		"bad created":       `keyId="k",headers="date",signature="` + sig + `",created=-1`,
	} {
		if _, err := ParseSignature(h); err == nil {
			t.Errorf("%s: accepted %q", name, h)
		}
	}
	if m := MissingSignedHeaders(SignatureParams{Headers: []string{"date", "host"}}); len(m) != 2 || m[0] != "(request-target)" || m[1] != "digest" {
		t.Fatalf("MissingSignedHeaders = %v", m)
	}
	for alg, ok := range map[string]bool{"": true, "hs2019": true, "rsa-sha256": true, "rsa-sha1": false, "hmac-sha256": false, "ecdsa-sha256": false, "RSA-SHA256": false} {
		if AlgorithmAllowed(alg) != ok {
			t.Errorf("AlgorithmAllowed(%q) != %v", alg, ok)
		}
	}
}

func TestParseKeyID(t *testing.T) {
	if d, k, err := ParseKeyID("b.example:8443#enc-00112233445566778899aabbccddeeff"); err != nil || d != "b.example:8443" || k != "enc-00112233445566778899aabbccddeeff" {
		t.Fatalf("%s %s %v", d, k, err)
	}
	for _, bad := range []string{"", "b.example", "#sig-00112233445566778899aabbccddeeff", "B.example#sig-00112233445566778899aabbccddeeff",
		"b.example#key-00112233445566778899aabbccddeeff", "b.example#sig-0011", "b.example#sig-00112233445566778899AABBCCDDEEFF", "a#b#sig-00112233445566778899aabbccddeeff"} {
		if _, _, err := ParseKeyID(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestDigestMatches(t *testing.T) {
	body := []byte("body")
	if !DigestMatches(DigestHeader(body), body) || !DigestMatches("SHA-512=xx, "+DigestHeader(body), body) {
		t.Fatal("right digest refused")
	}
	for _, h := range []string{"", DigestHeader([]byte("other")), "SHA-512=" + DigestHeader(body)[8:], "SHA-256=not base64"} {
		if DigestMatches(h, body) {
			t.Errorf("accepted %q", h)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for addr, public := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1::1": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false, "fc00::1": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false, "64:ff9b::a00:1": false, "224.0.0.1": false, "255.255.255.255": false, "198.18.0.1": false,
	} {
		if got := PublicAddr(netip.MustParseAddr(addr)); got != public {
			t.Errorf("PublicAddr(%s) = %v", addr, got)
		}
	}
}

func TestClientRefusesPrivateAddressesAndRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest", http.StatusFound)
	}))
	defer srv.Close()
	_, err := NewHTTPClient(ClientOptions{}).Get(srv.URL)
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("loopback peer without AllowPrivate: %v", err)
	}
	resp, err := NewHTTPClient(ClientOptions{AllowPrivate: true}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("a redirect must be returned, not followed: %d", resp.StatusCode)
	}
}

// docServer serves a node document for its own address.
func docServer(t *testing.T, body func(domain string) []byte) (*httptest.Server, string, *atomic.Int32) {
	var hits atomic.Int32
	var domain string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body(domain))
	}))
	t.Cleanup(srv.Close)
	domain = strings.TrimPrefix(srv.URL, "http://")
	return srv, domain, &hits
}

func docFor(t *testing.T, domain string, sigKey, encKey int) []byte {
	pubs := []keys.PublicKey{
		{ID: "sig-" + strings.Repeat("0", 32), Use: keys.UseSig, Key: &testkeys.Key(sigKey).PublicKey, CreatedAt: time.Now()},
		{ID: "enc-" + strings.Repeat("1", 32), Use: keys.UseEnc, Key: &testkeys.Key(encKey).PublicKey, CreatedAt: time.Now()},
	}
	b, _ := json.Marshal(BuildNodeDocument(domain, "http", pubs))
	return b
}

func TestDirectoryCachesAndBoundsRefetch(t *testing.T) {
	_, domain, hits := docServer(t, func(d string) []byte { return docFor(t, d, 0, 1) })
	now := time.Now()
	clock := func() time.Time { return now }
	d := NewDirectory(NewHTTPClient(ClientOptions{AllowPrivate: true}), "http", time.Hour, time.Minute, clock, nil)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := d.Peer(ctx, domain); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("5 lookups within the TTL made %d fetches", hits.Load())
	}
	if _, refetched, _ := d.Refresh(ctx, domain); !refetched {
		t.Fatal("the first forced refetch must fetch")
	}
	for i := 0; i < 20; i++ {
		if _, refetched, _ := d.Refresh(ctx, domain); refetched {
			t.Fatal("a second forced refetch within the interval fetched")
		}
	}
	if hits.Load() != 2 {
		t.Fatalf("hits = %d, want 2", hits.Load())
	}
	now = now.Add(time.Minute)
	if _, refetched, _ := d.Refresh(ctx, domain); !refetched {
		t.Fatal("after the interval a refetch is allowed again")
	}
	now = now.Add(2 * time.Hour)
	d.Peer(ctx, domain)
	if hits.Load() != 4 {
		t.Fatalf("after the TTL the document is fetched again: hits %d", hits.Load())
	}
}

func TestParseNodeDocumentRefusals(t *testing.T) {
	now := time.Now()
	good := docFor(t, "b.example", 0, 1)
	if _, err := ParseNodeDocument(good, "b.example", "http", now); err != nil {
		t.Fatalf("good document: %v", err)
	}
	mutate := func(f func(*NodeDocument)) []byte {
		var d NodeDocument
		json.Unmarshal(good, &d)
		f(&d)
		b, _ := json.Marshal(d)
		return b
	}
	past := now.Add(-time.Hour)
	for name, body := range map[string][]byte{
		"another domain":        mutate(func(d *NodeDocument) { d.Domain = "c.example" }),
		"inbox on another host": mutate(func(d *NodeDocument) { d.Inbox = "http://evil.example/federation/inbox" }),
		"inbox on https":        mutate(func(d *NodeDocument) { d.Inbox = "https://b.example/federation/inbox" }),
		"other protocol":        mutate(func(d *NodeDocument) { d.Protocol = "fednode/2" }),
		"key of another node":   mutate(func(d *NodeDocument) { d.Keys[0].ID = "c.example#sig-" + strings.Repeat("0", 32) }),
		"use mismatch":          mutate(func(d *NodeDocument) { d.Keys[0].Use = "enc" }),
		"algorithm mismatch":    mutate(func(d *NodeDocument) { d.Keys[1].Algorithm = "rsa-sha256" }),
		"bad pem":               mutate(func(d *NodeDocument) { d.Keys[0].PublicKeyPEM = "x" }),
		"no current enc key":    mutate(func(d *NodeDocument) { d.Keys[1].ExpiresAt = &past }),
		"repeated id":           mutate(func(d *NodeDocument) { d.Keys = append(d.Keys, d.Keys[0]) }),
		"unknown member":        []byte(strings.Replace(string(good), `"protocol"`, `"x":1,"protocol"`, 1)),
		"trailing data":         append(append([]byte{}, good...), []byte(" {}")...),
	} {
		if _, err := ParseNodeDocument(body, "b.example", "http", now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSealAndOpenThroughKeyrings(t *testing.T) {
	ctx := context.Background()
	rcpt := keyringOf(t, 2, 5)
	pubs, _ := rcpt.PublicKeys(ctx)
	enc, _ := keys.CurrentKey(pubs, keys.UseEnc)
	r := Recipient{Domain: "b.example", EncKeyID: KeyID("b.example", enc.ID), EncKey: enc.Key}
	var msgs []fednode.Message
	for i := 0; i < 3; i++ {
		msgs = append(msgs, fednode.Message{ID: fednode.NewID(time.Now().Add(time.Duration(i) * time.Millisecond)),
			From: fednode.Address{User: "alice", Domain: "a.example"}, To: fednode.Address{User: "bob", Domain: "b.example"},
			Content: "hi", Tags: []string{"t"}, CreatedAt: time.Now()})
	}
	env, err := SealMessages("a.example", r, msgs)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(env)
	dec, err := DecodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Keys) != 3 || dec.Keys[0].ID == dec.Keys[1].ID {
		t.Fatal("version 1 senders use a fresh data key per message")
	}
	for _, m := range dec.Messages {
		pt, err := OpenMessage(ctx, rcpt, dec, m)
		if err != nil || pt.Content != "hi" || len(pt.Tags) != 1 {
			t.Fatalf("OpenMessage: %+v %v", pt, err)
		}
	}
	if _, err := OpenMessage(ctx, keyringOf(t, 4, 6), dec, dec.Messages[0]); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("another node's keyring must fail to unwrap: %v", err)
	}
	if _, err := SealMessages("a.example", r, []fednode.Message{{To: fednode.Address{User: "x", Domain: "c.example"}, From: msgs[0].From}}); err == nil {
		t.Fatal("a message for another node was sealed")
	}
}

// Fuzz targets for every parser of peer input.

func FuzzParseSignature(f *testing.F) {
	f.Add(`keyId="a.example#sig-00112233445566778899aabbccddeeff",algorithm="hs2019",headers="(request-target) host date digest",signature="c2ln"`)
	f.Add(`keyId="k",headers="date",signature="c2ln",created=1`)
	f.Add(`keyId="k",,`)
	f.Fuzz(func(t *testing.T, h string) {
		p, err := ParseSignature(h)
		if err != nil {
			return
		}
		if p.KeyID == "" || len(p.Headers) == 0 || len(p.Signature) == 0 || len(h) > MaxSignatureBytes {
			t.Fatalf("accepted an incomplete header: %q -> %+v", h, p)
		}
		for _, hd := range p.Headers {
			if hd == "" || hd != strings.ToLower(hd) {
				t.Fatalf("accepted header name %q", hd)
			}
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	kr := localWithKey(f, 2)
	pubs, _ := kr.PublicKeys(context.Background())
	enc, _ := keys.CurrentKey(pubs, keys.UseEnc)
	env, _ := SealMessages("a.example", Recipient{Domain: "b.example", EncKeyID: KeyID("b.example", enc.ID), EncKey: enc.Key},
		[]fednode.Message{{ID: fednode.NewID(time.Now()), From: fednode.Address{User: "a", Domain: "a.example"}, To: fednode.Address{User: "b", Domain: "b.example"}, Content: "x", CreatedAt: time.Now()}})
	good, _ := json.Marshal(env)
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"from_node":"a","to_node":"b","keys":[],"messages":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := DecodeEnvelope(body)
		if err != nil {
			return
		}
		if e.Version != 1 || len(e.Messages) == 0 || len(e.Messages) > MaxEnvelopeMsgs || len(e.Keys) == 0 {
			t.Fatalf("accepted a malformed envelope: %+v", e)
		}
		// Whatever decodes must open or fail cleanly, never panic.
		for _, m := range e.Messages {
			OpenMessage(context.Background(), kr, e, m)
		}
	})
}

func FuzzParseNodeDocument(f *testing.F) {
	f.Add(docFor(nil, "b.example", 0, 1))
	f.Add([]byte(`{"protocol":"fednode/1","domain":"b.example","inbox":"http://b.example/x","keys":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseNodeDocument(body, "b.example", "http", time.Now())
		if err != nil {
			return
		}
		if p.Domain != "b.example" || p.Inbox.Host != "b.example" || len(p.SigKeys) == 0 || p.Enc.EncKey == nil {
			t.Fatalf("accepted an unusable document: %+v", p)
		}
	})
}

// localWithKey is localWith for fuzz targets.
func localWithKey(f *testing.F, i int) *keys.Local {
	kr, err := keys.OpenLocal(f.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) { i++; return testkeys.Key(i - 1), nil }})
	if err != nil {
		f.Fatal(err)
	}
	return kr
}

// keyringOf is a local keyring whose signing key is test key sig and whose
// encryption key is test key enc.
func keyringOf(t *testing.T, sig, enc int) *keys.Local {
	t.Helper()
	order := []int{sig, enc}
	kr, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) {
		k := testkeys.Key(order[0])
		order = order[1:]
		return k, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// verifyRequest verifies r's signature as the inbox does: parse the header
// strictly, then verify that parse.
func verifyRequest(r *http.Request, pub *rsa.PublicKey) error {
	p, err := ParseSignature(r.Header.Get("Signature"))
	if err != nil {
		return err
	}
	return VerifySignature(r, p, pub)
}
