package federation

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-fed/httpsig"

	"github.com/fednode/fednode/internal/testkeys"
)

// sigTestRequest is a delivery as the inbox sees it: Host in r.Host, the
// covered headers, one header on two lines and one with padding.
func sigTestRequest(date time.Time) *http.Request {
	body := `{"version":1}`
	r := httptest.NewRequest(http.MethodPost, "https://b.example"+InboxPath+"?q=1", strings.NewReader(body))
	r.Header.Set("Date", date.UTC().Format(http.TimeFormat))
	r.Header.Set("Digest", DigestHeader([]byte(body)))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", " two ")
	r.Header.Set("X-Padded", "  padded\t")
	return r
}

func signString(t testing.TB, k *rsa.PrivateKey, s string) []byte {
	t.Helper()
	h := sha256.Sum256([]byte(s))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// referenceVerify is the rule itself: the signature is good exactly when it
// is RSASSA-PKCS1-v1_5 SHA-256 over the signing string of our parse, and the
// parse's times are acceptable.
func referenceVerify(r *http.Request, p SignatureParams, pub *rsa.PublicKey) bool {
	if CheckSignatureTime(p, time.Now()) != nil {
		return false
	}
	ss, err := SigningString(r, p)
	if err != nil {
		return false
	}
	h := sha256.Sum256([]byte(ss))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], p.Signature) == nil
}

// TestSignatureSpaceAfterCommaBypass is the reported bypass: a space after a
// comma hides "headers" from go-fed's parser, which then checks the
// signature over the Date line alone. Our parse must be what is verified.
func TestSignatureSpaceAfterCommaBypass(t *testing.T) {
	key := testkeys.Key(0)
	r := sigTestRequest(time.Now())
	overDateOnly := signString(t, key, "date: "+r.Header.Get("Date"))
	r.Header.Set("Signature", `keyId="a.example#sig-00112233445566778899aabbccddeeff",algorithm="hs2019", headers="(request-target) host date digest",signature="`+
		base64.StdEncoding.EncodeToString(overDateOnly)+`"`)

	// The hazard is real: go-fed v1.1.0 fed the raw header accepts it.
	if v, err := httpsig.NewVerifier(r.Clone(r.Context())); err != nil || v.Verify(&key.PublicKey, httpsig.RSA_SHA256) != nil {
		t.Fatalf("go-fed no longer accepts the raw header (%v): this test's premise changed", err)
	}
	p, err := ParseSignature(r.Header.Get("Signature"))
	if err != nil {
		t.Fatalf("the header is well-formed and must parse: %v", err)
	}
	if len(p.Headers) != 4 || len(MissingSignedHeaders(p)) != 0 {
		t.Fatalf("parsed headers %v", p.Headers)
	}
	if err := VerifySignature(r, p, &key.PublicKey); err == nil {
		t.Fatal("a signature over the Date line alone verified for (request-target) host date digest")
	}
	// The same header with a signature over the full signing string verifies.
	ss, err := SigningString(r, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Signature = signString(t, key, ss)
	if err := VerifySignature(r, p, &key.PublicKey); err != nil {
		t.Fatalf("a correct signature is refused: %v", err)
	}
}

// TestSignatureWhitespaceVariants: every placement of spaces and tabs around
// "," and "=" parses to the same parameters, and verifies the same way.
func TestSignatureWhitespaceVariants(t *testing.T) {
	key := testkeys.Key(0)
	r := sigTestRequest(time.Now())
	want := SignatureParams{KeyID: "a.example#sig-00112233445566778899aabbccddeeff", Algorithm: "hs2019", Headers: SignedHeaders}
	ss, err := SigningString(r, want)
	if err != nil {
		t.Fatal(err)
	}
	want.Signature = signString(t, key, ss)
	sig := base64.StdEncoding.EncodeToString(want.Signature)
	params := [][2]string{{"keyId", want.KeyID}, {"algorithm", "hs2019"}, {"headers", strings.Join(SignedHeaders, " ")}, {"signature", sig}}
	build := func(beforeEq, afterEq, beforeComma, afterComma string) string {
		parts := make([]string, len(params))
		for i, kv := range params {
			parts[i] = kv[0] + beforeEq + "=" + afterEq + `"` + kv[1] + `"`
		}
		return strings.Join(parts, beforeComma+","+afterComma)
	}
	ws := []string{"", " ", "\t", "  ", " \t "}
	n := 0
	for _, be := range ws {
		for _, ae := range ws {
			for _, bc := range ws {
				for _, ac := range ws {
					h := build(be, ae, bc, ac)
					for _, outer := range []string{"", " "} {
						h := outer + h + outer
						n++
						p, err := ParseSignature(h)
						if err != nil {
							t.Fatalf("%q: %v", h, err)
						}
						if !reflect.DeepEqual(p, want) {
							t.Fatalf("%q parsed to %+v", h, p)
						}
						r.Header.Set("Signature", h)
						if err := VerifySignature(r, p, &key.PublicKey); err != nil {
							t.Fatalf("%q does not verify: %v", h, err)
						}
					}
				}
			}
		}
	}
	t.Logf("%d variants", n)
	// Whitespace inside a quoted value is part of the value, never trimmed.
	p, err := ParseSignature(`keyId=" ` + want.KeyID + `",headers="` + strings.Join(SignedHeaders, " ") + `",signature="` + sig + `"`)
	if err != nil || p.KeyID != " "+want.KeyID {
		t.Fatalf("%+v %v", p, err)
	}
	// Whitespace that splits a header list into empty names is refused.
	for _, h := range []string{
		`keyId="k",headers="date  digest",signature="` + sig + `"`,
		`keyId="k",headers=" date",signature="` + sig + `"`,
		`keyId="k",headers="date ",signature="` + sig + `"`,
	} {
		if _, err := ParseSignature(h); err == nil {
			t.Errorf("accepted %q", h)
		}
	}
}

// TestSignatureParamVariants: duplicate, reordered, upper-case, empty and
// unknown parameters, each either refused by the parser or verified as
// parsed.
func TestSignatureParamVariants(t *testing.T) {
	key := testkeys.Key(0)
	r := sigTestRequest(time.Now())
	base := SignatureParams{KeyID: "a.example#sig-00112233445566778899aabbccddeeff", Headers: SignedHeaders}
	ss, _ := SigningString(r, base)
	sig := base64.StdEncoding.EncodeToString(signString(t, key, ss))
	dateOnly := base64.StdEncoding.EncodeToString(signString(t, key, "date: "+r.Header.Get("Date")))
	kid := `keyId="` + base.KeyID + `"`
	hdrs := `headers="(request-target) host date digest"`
	tests := []struct {
		name, header string
		parses       bool
		verifies     bool
	}{
		{"canonical", kid + `,` + hdrs + `,signature="` + sig + `"`, true, true},
		{"reordered", `signature="` + sig + `",` + hdrs + `,` + kid, true, true},
		{"unknown parameter", kid + `,x-extra="y",` + hdrs + `,signature="` + sig + `"`, true, true},
		{"upper-case Headers is unknown", kid + `,Headers="date",` + hdrs + `,signature="` + sig + `"`, true, true},
		{"upper-case Headers alone", kid + `,Headers="(request-target) host date digest",signature="` + sig + `"`, false, false},
		{"upper-case KeyId alone", `KeyId="` + base.KeyID + `",` + hdrs + `,signature="` + sig + `"`, false, false},
		{"duplicate headers", kid + `,` + hdrs + `,headers="date",signature="` + sig + `"`, false, false},
		{"duplicate signature", kid + `,` + hdrs + `,signature="` + sig + `",signature="` + dateOnly + `"`, false, false},
		{"duplicate unknown", kid + `,x="1",x="2",` + hdrs + `,signature="` + sig + `"`, false, false},
		{"empty headers", kid + `,headers="",signature="` + sig + `"`, false, false},
		{"empty keyId", `keyId="",` + hdrs + `,signature="` + sig + `"`, false, false},
		{"empty signature", kid + `,` + hdrs + `,signature=""`, false, false},
		{"empty parameter", kid + `,,` + hdrs + `,signature="` + sig + `"`, false, false},
		{"trailing comma", kid + `,` + hdrs + `,signature="` + sig + `",`, false, false},
		{"comma in keyId", `keyId="a.example,x",` + hdrs + `,signature="` + sig + `"`, false, false},
		{"signature covered", kid + `,headers="(request-target) host date digest signature",signature="` + sig + `"`, false, false},
		{"authorization covered", kid + `,headers="(request-target) host date digest authorization",signature="` + sig + `"`, false, false},
		{"(created) without created", kid + `,headers="(request-target) (created) host date digest",signature="` + sig + `"`, false, false},
		{"header name with a slash", kid + `,headers="(request-target) host date digest a/b",signature="` + sig + `"`, false, false},
		{"over date only, space after comma", kid + `, ` + hdrs + `, signature="` + dateOnly + `"`, true, false},
		{"over date only, tab before equals", kid + `,headers` + "\t" + `="(request-target) host date digest",signature="` + dateOnly + `"`, true, false},
		{"covers one more header", kid + `,headers="(request-target) host date digest content-type",signature="` + sig + `"`, true, false},
		{"covers a multi-line header", kid + `,headers="(request-target) host date digest x-multi",signature="` + sig + `"`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseSignature(tt.header)
			if (err == nil) != tt.parses {
				t.Fatalf("parse: %v, want parses=%v", err, tt.parses)
			}
			if err != nil {
				return
			}
			r.Header.Set("Signature", tt.header)
			got := VerifySignature(r, p, &key.PublicKey) == nil
			if got != tt.verifies || got != referenceVerify(r, p, &key.PublicKey) {
				t.Fatalf("verifies=%v, want %v (reference %v)", got, tt.verifies, referenceVerify(r, p, &key.PublicKey))
			}
		})
	}
}

// TestUncoveredHeaders: a covered header the request lacks, or carries
// twice, is named.
func TestUncoveredHeaders(t *testing.T) {
	r := sigTestRequest(time.Now())
	p := SignatureParams{Headers: []string{"(request-target)", "host", "date", "digest", "x-multi", "x-absent", "(created)"}}
	if got := UncoveredHeaders(r, p); !reflect.DeepEqual(got, []string{"x-multi", "x-absent"}) {
		t.Fatalf("got %v", got)
	}
	r.Header.Add("Date", "Thu, 01 Jan 2026 00:00:00 GMT")
	if got := UncoveredHeaders(r, SignatureParams{Headers: SignedHeaders}); !reflect.DeepEqual(got, []string{"date"}) {
		t.Fatalf("a second Date line: got %v", got)
	}
}

func TestCheckSignatureTime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tt := range []struct {
		created, expires int64
		ok               bool
	}{
		{0, 0, true},
		{now.Unix() - 60, 0, true},
		{now.Unix() + 5, 0, true},
		{now.Unix() + 6, 0, false},
		{0, now.Unix(), true},
		{0, now.Unix() - 1, false},
	} {
		if err := CheckSignatureTime(SignatureParams{Created: tt.created, Expires: tt.expires}, now); (err == nil) != tt.ok {
			t.Errorf("created %d expires %d: %v", tt.created, tt.expires, err)
		}
	}
}

// FuzzVerifySignature is the differential test of the rule "our parse is
// the only truth": for any header ParseSignature accepts, go-fed (handed the
// canonical header) verifies exactly when a signature over the signing
// string of our parse verifies; the canonical header parses back to the same
// parameters. mode picks the signature: the header's own bytes, a correct
// signature over our signing string, or one over the Date line alone (what
// a lenient parser falls back to).
func FuzzVerifySignature(f *testing.F) {
	kid := `keyId="a.example#sig-00112233445566778899aabbccddeeff"`
	sig := `signature="c2lnbmF0dXJl"`
	for _, h := range []string{
		kid + `,algorithm="hs2019",headers="(request-target) host date digest",` + sig,
		kid + `,algorithm="hs2019", headers="(request-target) host date digest",` + sig,
		kid + ` , headers = "(request-target) host date digest" ,` + "\t" + sig,
		sig + `,headers="digest date host (request-target)",` + kid,
		kid + `,headers="date",headers="digest",` + sig,
		kid + `,Headers="date",headers="(request-target) host date",` + sig,
		kid + `,headers="",` + sig,
		kid + `,x-unknown="v",headers="date x-multi x-padded content-type",` + sig,
		kid + `,headers="(request-target) (created) (expires) date",created=1,expires=99999999999,` + sig,
		kid + `,headers="(created) date",created=` + strconv.FormatInt(time.Now().Unix(), 10) + `,` + sig,
		kid + `,algorithm="rsa-sha256",headers="host x-absent",` + sig,
	} {
		for mode := byte(0); mode < 3; mode++ {
			f.Add(h, mode)
		}
	}
	key := testkeys.Key(0)
	f.Fuzz(func(t *testing.T, h string, mode byte) {
		p, err := ParseSignature(h)
		if err != nil {
			return
		}
		// The canonical header carries created and expires only where they
		// are covered (elsewhere they are not signed, and mean nothing).
		want := p
		if !slices.Contains(p.Headers, hdrCreated) {
			want.Created = 0
		}
		if !slices.Contains(p.Headers, hdrExpires) {
			want.Expires = 0
		}
		back, err := ParseSignature(p.Header())
		if err != nil || !reflect.DeepEqual(back, want) {
			t.Fatalf("canonical header %q of %q parses to %+v, %v", p.Header(), h, back, err)
		}
		r := sigTestRequest(time.Now())
		switch mode % 3 {
		case 1:
			if ss, err := SigningString(r, p); err == nil {
				p.Signature = signString(t, key, ss)
			}
		case 2:
			p.Signature = signString(t, key, "date: "+r.Header.Get("Date"))
		}
		r.Header.Set("Signature", h)
		ok := referenceVerify(r, p, &key.PublicKey)
		if got := VerifySignature(r, p, &key.PublicKey) == nil; got != ok {
			t.Fatalf("header %q mode %d: go-fed says %v, the signing string of our parse says %v", h, mode, got, ok)
		}
	})
}
