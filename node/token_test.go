package node

import (
	"context"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

func testIssuer() *tokenIssuer {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return &tokenIssuer{secrets: staticSecret("0123456789abcdef0123456789abcdef"), alg: "HS256", ttl: time.Hour, issuer: "a.example", now: func() time.Time { return now }}
}

func TestTokenRoundTrip(t *testing.T) {
	ti := testIssuer()
	s := fednode.Session{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Username: "alice", IssuedAt: ti.now(), ExpiresAt: ti.now().Add(time.Hour)}
	tok, err := ti.issue(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	id, sub, err := ti.parse(context.Background(), tok)
	if err != nil || id != s.ID || sub != "alice" {
		t.Fatalf("parse = %q %q %v", id, sub, err)
	}
}

// FuzzParseToken: no input panics, and nothing but a token we signed parses.
func FuzzParseToken(f *testing.F) {
	ti := testIssuer()
	good, _ := ti.issue(context.Background(), fednode.Session{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Username: "alice", IssuedAt: ti.now(), ExpiresAt: ti.now().Add(time.Hour)})
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, sub, err := ti.parse(context.Background(), s)
		if err == nil && (s != good || sub != "alice") {
			t.Fatalf("accepted a token we did not sign: %q", s)
		}
	})
}
