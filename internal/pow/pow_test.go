package pow

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	key  = []byte(strings.Repeat("k", 32))
	t0   = time.Unix(1767225600, 0) // 2026-01-01
	keys = func(kid string) ([]byte, error) {
		if kid == "v2" || kid == "" {
			return key, nil
		}
		return nil, errors.New("retired")
	}
)

// TestKnownAnswer pins the construction to values computed apart from this
// code (Python's hashlib and hmac), as a browser client will compute them.
func TestKnownAnswer(t *testing.T) {
	salt := "00112233445566778899aabb?expires=1767225600&kid=v2&"
	const challenge = "68ccca553cc52ad7d73ebd45e7c2b918ce763a4048ee6c845619adf7cac5bae7"
	if got := hashOf(salt, 4242); got != challenge {
		t.Fatalf("hash = %s", got)
	}
	if got := sign(key, Algorithm, salt, challenge); got != "e4c39ae66c9adafe5d08d76b3056f9898acd53b24304c33f9ba0ee678282a0f9" {
		t.Fatalf("signature = %s", got)
	}
	c := Challenge{Algorithm: Algorithm, Challenge: challenge, MaxNumber: 10000, Salt: salt, Signature: sign(key, Algorithm, salt, challenge)}
	s, err := Solve(context.Background(), c)
	if err != nil || s.Number != 4242 {
		t.Fatalf("Solve = %+v, %v", s, err)
	}
	if err := Verify(s, keys, t0.Add(-time.Second)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func solved(t *testing.T, kid string, expires time.Time) Solution {
	t.Helper()
	c, err := New(key, kid, 2000, expires)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Solve(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseSolution(Encode(s))
	if err != nil {
		t.Fatalf("ParseSolution(Encode(s)): %v", err)
	}
	return p
}

func TestVerify(t *testing.T) {
	now := t0
	good := solved(t, "v2", now.Add(time.Minute))
	if err := Verify(good, keys, now); err != nil {
		t.Fatalf("a good solution: %v", err)
	}
	if exp, kid, err := SaltParams(good.Salt); err != nil || kid != "v2" || !exp.Equal(now.Add(time.Minute)) {
		t.Fatalf("SaltParams = %v %q %v", exp, kid, err)
	}
	mod := func(f func(*Solution)) Solution { s := good; f(&s); return s }
	otherKey := func(string) ([]byte, error) { return []byte(strings.Repeat("x", 32)), nil }
	tests := []struct {
		name string
		s    Solution
		keys func(string) ([]byte, error)
		now  time.Time
		want error
	}{
		{"expired", good, keys, now.Add(time.Minute), ErrExpired},
		{"signed with another key", good, otherKey, now, ErrForged},
		{"retired key id", solved(t, "v1", now.Add(time.Minute)), keys, now, ErrForged},
		{"wrong number", mod(func(s *Solution) { s.Number++ }), keys, now, ErrWrong},
		{"later expiry edited into the salt", mod(func(s *Solution) {
			s.Salt = strings.Replace(s.Salt, "expires=", "expires=9", 1)
		}), keys, now.Add(2 * time.Minute), ErrForged},
		{"salt without the closing &", mod(func(s *Solution) { s.Salt = strings.TrimSuffix(s.Salt, "&") }), keys, now, ErrMalformed},
		{"challenge of another salt", mod(func(s *Solution) { s.Challenge = solved(t, "v2", now.Add(time.Minute)).Challenge }), keys, now, ErrForged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.s, tc.keys, tc.now); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseSolutionRefuses(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	h := strings.Repeat("a", 64)
	ok := `{"algorithm":"SHA-256","challenge":"` + h + `","number":5,"salt":"s?expires=1&","signature":"` + h + `"}`
	if _, err := ParseSolution(b64(ok)); err != nil {
		t.Fatalf("control: %v", err)
	}
	if _, err := ParseSolution(base64.RawURLEncoding.EncodeToString([]byte(ok))); err != nil {
		t.Fatalf("URL-safe base64 without padding: %v", err)
	}
	for name, payload := range map[string]string{
		"empty":           "",
		"not base64":      "!!!",
		"too long":        strings.Repeat("A", MaxPayloadLen+4),
		"not JSON":        b64("nope"),
		"other algorithm": b64(strings.Replace(ok, "SHA-256", "SHA-1", 1)),
		"upper-case hex":  b64(strings.Replace(ok, `"challenge":"`+h, `"challenge":"`+strings.ToUpper(h), 1)),
		"short hex":       b64(strings.Replace(ok, `"signature":"`+h, `"signature":"abc`, 1)),
		"negative number": b64(strings.Replace(ok, `"number":5`, `"number":-5`, 1)),
		"fractional":      b64(strings.Replace(ok, `"number":5`, `"number":5.5`, 1)),
		"missing number":  b64(strings.Replace(ok, `"number":5,`, ``, 1)),
		"unknown member":  b64(strings.Replace(ok, `{`, `{"x":1,`, 1)),
		"duplicate":       b64(strings.Replace(ok, `{`, `{"number":1,`, 1)),
		"salt with space": b64(strings.Replace(ok, `"s?expires`, `"s ?expires`, 1)),
		"trailing data":   b64(ok + "{}"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseSolution(payload); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestNewSpreadsTheNumber(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		c, err := New(key, "", 1000, t0)
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.Challenge] || seen[c.Salt] {
			t.Fatal("two challenges share a salt or a hash")
		}
		seen[c.Challenge], seen[c.Salt] = true, true
		if c.MaxNumber != 1000 || c.Algorithm != Algorithm || !strings.HasSuffix(c.Salt, "&") {
			t.Fatalf("challenge %+v", c)
		}
	}
	if _, err := New(key, "", 0, t0); err == nil {
		t.Fatal("maxnumber 0 accepted")
	}
}

func TestSolveStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, _ := New(key, "", 1<<40, t0)
	if _, err := Solve(ctx, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("Solve after cancel: %v", err)
	}
}

// FuzzParseSolution: whatever a client sends, the parser returns a
// solution of the documented shape or ErrMalformed, and never panics.
func FuzzParseSolution(f *testing.F) {
	f.Add(Encode(Solution{Algorithm: Algorithm, Challenge: strings.Repeat("0", 64), Number: 1, Salt: "a?expires=1&", Signature: strings.Repeat("f", 64)}))
	f.Add("eyJhbGdvcml0aG0iOiJTSEEtMjU2In0=")
	f.Add("")
	f.Fuzz(func(t *testing.T, payload string) {
		s, err := ParseSolution(payload)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("a refusal that is not ErrMalformed: %v", err)
			}
			return
		}
		if s.Algorithm != Algorithm || !isHex64(s.Challenge) || !isHex64(s.Signature) || s.Number < 0 || len(s.Salt) > maxSaltLen {
			t.Fatalf("accepted %+v", s)
		}
		_ = Verify(s, keys, t0) // must not panic either
	})
}

// BenchmarkSolve solves challenges of the default difficulty (node's
// CHALLENGE_MAX_NUMBER); ns/op is the time a native client spends.
func BenchmarkSolve(b *testing.B) {
	for b.Loop() {
		c, _ := New(key, "v1", 250_000, t0)
		if _, err := Solve(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the server's cost per solution.
func BenchmarkVerify(b *testing.B) {
	c, _ := New(key, "v2", 1000, t0.Add(time.Hour))
	s, _ := Solve(context.Background(), c)
	for b.Loop() {
		if err := Verify(s, keys, t0); err != nil {
			b.Fatal(err)
		}
	}
}
