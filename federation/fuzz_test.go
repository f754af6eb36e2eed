package federation

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/strictjson"
)

// Fuzz targets for what a peer's answer to a delivery carries (the answer,
// a refusal's code, Retry-After) and for the Digest header and key ids of
// its requests. The other parsers of peer input are fuzzed in
// federation_test.go and signature_test.go.

// FuzzDecodeAnswer: an answer that decodes strictly is read alike by
// encoding/json (no second reading of the same bytes differs), and
// re-encodes to bytes that decode to the same answer.
func FuzzDecodeAnswer(f *testing.F) {
	for _, s := range []string{
		// The example of docs/PROTOCOL.md 2.4, and what fednode's inbox sends.
		`{"results": [{"id": "01KBQ6FTR0B7ZJ8M5V3W2X9Y4Z", "status": "accepted"},
		              {"id": "01KCQ6FTR0B7ZJ8M5V3W2X9Y4Z", "status": "duplicate"},
		              {"id": "01KDQ6FTR0B7ZJ8M5V3W2X9Y4Z", "status": "refused", "code": "unknown_recipient", "message": "there is no user bob@b.example"}]}`,
		`{"results":[{"id":"01KBQ6FTR0B7ZJ8M5V3W2X9Y4Z","status":"retry","code":"unavailable","message":"try again later"}]}`,
		`{"results":[{"id":"01KBQ6FTR0B7ZJ8M5V3W2X9Y4Z","status":"refused","code":"unwrap_failed","message":"the data key does not unwrap"}]}`,
		`{"results":[]}`,
		`{"results":null}`,
		`{"results":[{"id":"x","status":"accepted","code":null,"message":"\u00e9\ud83d\ude00"}]}`,
		// Refused: case variants, duplicates, missing and unknown members.
		`{"results":[{"id":"x","status":"accepted","Status":"refused"}]}`,
		`{"results":[{"id":"x","status":"refused","status":"accepted"}]}`,
		`{"Results":[]}`,
		`{"results":[{"id":"x"}]}`,
		`{"results":[],"extra":1}`,
		`{"results":[{"id":"\ud800","status":"accepted"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := DecodeAnswer(raw)
		if err != nil {
			return
		}
		var lenient Answer
		if err := json.Unmarshal(raw, &lenient); err != nil || !reflect.DeepEqual(lenient, a) {
			t.Fatalf("%q: strictly %+v, by encoding/json %+v (%v)", raw, a, lenient, err)
		}
		re, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeAnswer(re)
		if err != nil || !reflect.DeepEqual(back, a) {
			t.Fatalf("%q decodes to %+v, which re-encodes to %s and decodes to %+v (%v)", raw, a, re, back, err)
		}
	})
}

// FuzzErrorCode: a code read from a refusal body is the code of that body
// read strictly, and encoding/json reads the same one; any valid UTF-8 code
// a receiver sends comes back unchanged.
func FuzzErrorCode(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":"banned","message":"this client is banned for a while"}}`,
		`{"error":{"code":"invalid_envelope","message":"messages[0].id: required","field":"messages[0].id"}}`,
		`{"error":{"code":"unavailable","message":"this node cannot decrypt right now; retry later"}}`,
		`{"error":{"code":"banned","Code":"x","message":"m"}}`,
		`{"error":{"code":"banned","code":"x","message":"m"}}`,
		`{"error":{"code":"banned"}}`,
		`{"error":{"code":"b\u0061nned","message":"m"}} `,
		`<html>502 Bad Gateway</html>`,
	} {
		f.Add([]byte(s), fednode.EBanned)
	}
	f.Add([]byte(`{}`), "\u00e9\u2028<&>\x7f")
	f.Fuzz(func(t *testing.T, raw []byte, code string) {
		got := ErrorCode(raw)
		var strict ErrorBody
		strictErr := strictjson.Decode(raw, &strict)
		if strictErr == nil && strict.Error.Code != got || strictErr != nil && got != "" {
			t.Fatalf("%q: ErrorCode %q, strictly %q (%v)", raw, got, strict.Error.Code, strictErr)
		}
		if got != "" {
			var lenient ErrorBody
			if err := json.Unmarshal(raw, &lenient); err != nil || lenient.Error.Code != got {
				t.Fatalf("%q: ErrorCode %q, by encoding/json %q (%v)", raw, got, lenient.Error.Code, err)
			}
		}
		if !utf8.ValidString(code) {
			return
		}
		var e ErrorBody
		e.Error.Code, e.Error.Message = code, "m"
		body, _ := json.Marshal(e)
		if c := ErrorCode(body); c != code {
			t.Fatalf("the refusal %s gives code %q, not %q", body, c, code)
		}
	})
}

// FuzzRetryAfter: the wait a peer asks for is never negative and never
// above MaxRetryAfter; delay-seconds mean exactly that many seconds (up to
// the cap); and a later clock never makes the wait longer.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{
		"120", "1", "0", "86400", "86401", "9223372037", "99999999999999999999999", "-5", "+5", "1.5", " 5", "",
		now.Add(time.Hour).Format(http.TimeFormat), // IMF-fixdate
		"Thursday, 26-Nov-26 13:00:00 GMT",         // RFC 850
		"Thu Nov 26 13:00:00 2026",                 // asctime
		now.Add(-time.Hour).Format(http.TimeFormat),
		"Fri, 31 Dec 9999 23:59:59 GMT",
		"soon",
	} {
		f.Add(v, int64(0))
		f.Add(v, int64(-3600))
	}
	f.Fuzz(func(t *testing.T, v string, shift int64) {
		at := now.Add(time.Duration(shift%(1<<32)) * time.Second) // within ±136 years
		d := retryAfter(v, at)
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("Retry-After %q at %v: wait %v", v, at, d)
		}
		if isDigits(v) {
			want := MaxRetryAfter
			if len(strings.TrimLeft(v, "0")) <= 6 { // below 10^6 s, over the cap anyway
				want = min(time.Duration(atoiSmall(v))*time.Second, MaxRetryAfter)
			}
			if d != want {
				t.Fatalf("Retry-After %q: wait %v, want %v", v, d, want)
			}
		}
		if later := retryAfter(v, at.Add(time.Second)); later > d {
			t.Fatalf("Retry-After %q: waits %v at %v but %v a second later", v, d, at, later)
		}
	})
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// atoiSmall is the value of a string of at most a few significant digits.
func atoiSmall(s string) int64 {
	var n int64
	for i := 0; i < len(s); i++ {
		n = n*10 + int64(s[i]-'0')
	}
	return n
}

// FuzzDigestMatches: a body always matches its own Digest header; a header
// that matches holds, among its comma-separated entries, a SHA-256 entry
// whose value is the SHA-256 of the body; and it matches no other body.
func FuzzDigestMatches(f *testing.F) {
	body := []byte(`{"version":1}`)
	for _, h := range []string{
		"SHA-256=19snJ1lzsviupJhMwH+HkJj4WH6OSkeF1XRwnMIoR1M=", // docs/PROTOCOL.md's vector
		DigestHeader(body),
		"sha-256=" + DigestHeader(body)[len("SHA-256="):],
		"SHA-512=xx, " + DigestHeader(body),
		DigestHeader(body) + ",SHA-256=AAAA",
		"SHA-256=AAAA," + DigestHeader(body),
		"SHA-256=" + base64.RawStdEncoding.EncodeToString(sha256Sum(body)),
		"SHA-256=not base64",
		"",
	} {
		f.Add(h, body)
	}
	f.Fuzz(func(t *testing.T, h string, body []byte) {
		if !DigestMatches(DigestHeader(body), body) {
			t.Fatalf("%q does not match its own digest", body)
		}
		if !DigestMatches(h, body) {
			return
		}
		sum := sha256.Sum256(body)
		found := false
		for _, part := range strings.Split(h, ",") {
			alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if got, err := base64.StdEncoding.DecodeString(val); ok && strings.EqualFold(alg, "SHA-256") && err == nil && bytes.Equal(got, sum[:]) {
				found = true
			}
		}
		if !found {
			t.Fatalf("Digest %q matches %q without its SHA-256", h, body)
		}
		if DigestMatches(h, append(bytes.Clone(body), 0)) {
			t.Fatalf("Digest %q matches %q and another body", h, body)
		}
	})
}

// FuzzParseKeyID: an accepted full key id is exactly KeyID of its parts,
// names a canonical node domain, and a key id of one of the two kinds.
func FuzzParseKeyID(f *testing.F) {
	for _, s := range []string{
		"a.example#sig-8fbec1bd6ae1c116ffeb7c4dd4985e58", // docs/PROTOCOL.md's vectors
		"b.example#enc-0b43c3e918892333d27bdc3aec6ec3c9",
		"b.example:8443#enc-00112233445566778899aabbccddeeff",
		"[2001:db8::1]:443#sig-00112233445566778899aabbccddeeff",
		"192.0.2.1#sig-00112233445566778899aabbccddeeff",
		"B.example#sig-00112233445566778899aabbccddeeff",
		"b.example.#sig-00112233445566778899aabbccddeeff",
		"b.example#sig-00112233445566778899AABBCCDDEEFF",
		"a#b#sig-00112233445566778899aabbccddeeff",
		"b.example#key-00112233445566778899aabbccddeeff",
		"#sig-00112233445566778899aabbccddeeff",
		"b.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, k, err := ParseKeyID(s)
		if err != nil {
			return
		}
		if KeyID(d, k) != s {
			t.Fatalf("%q parses to %q and %q, which make %q", s, d, k, KeyID(d, k))
		}
		if cd, err := fednode.ParseDomain(d); err != nil || cd != d || strings.Contains(d, "#") {
			t.Fatalf("%q names the node %q, which is not a canonical domain (%q, %v)", s, d, cd, err)
		}
		kind, hex, _ := strings.Cut(k, "-")
		if kind != "sig" && kind != "enc" || len(hex) != 32 || strings.Trim(hex, "0123456789abcdef") != "" {
			t.Fatalf("%q names the key %q", s, k)
		}
	})
}
