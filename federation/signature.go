package federation

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-fed/httpsig"

	"github.com/fednode/fednode/keys"
)

// SignatureParams is a parsed Signature header (draft-cavage-http-signatures-12).
//
// It is the only reading of a peer's Signature header that counts: the
// inbox checks these parameters, and VerifySignature verifies exactly them,
// by handing go-fed/httpsig a header rebuilt from them (Header), never the
// bytes the peer sent. go-fed's own parser splits on commas without trimming
// and falls back to covering only Date when it misses "headers", so a
// header that two parsers read differently could otherwise be checked for
// one set of covered headers and verified for another.
type SignatureParams struct {
	KeyID     string
	Algorithm string // "" when absent
	Headers   []string
	Signature []byte
	Created   int64
	Expires   int64
}

// Pseudo-headers of the signing string, computed rather than read from the
// request.
const (
	hdrRequestTarget = "(request-target)"
	hdrCreated       = "(created)"
	hdrExpires       = "(expires)"
)

// ParseSignature parses a Signature header strictly: comma-separated
// name=value parameters with optional spaces or tabs around each comma and
// each "=" (RFC 7235's auth-param), values quoted (created and expires may
// be bare integers), no parameter twice, keyId, headers and signature
// required, the signature in standard base64. The header list is lower-case
// header names (tokens) or the pseudo-headers (request-target), (created)
// and (expires), no name twice, never signature or authorization; (created)
// and (expires) need their parameter. keyId, algorithm and headers may not
// contain a comma. Unknown parameters are ignored, as the draft says.
func ParseSignature(h string) (SignatureParams, error) {
	var p SignatureParams
	if h == "" {
		return p, errors.New("the Signature header is missing")
	}
	if len(h) > MaxSignatureBytes {
		return p, errors.New("the Signature header is too long")
	}
	seen := map[string]bool{}
	rest := h
	for {
		rest = trimBWS(rest)
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return p, errors.New("malformed parameter")
		}
		name := strings.TrimRight(rest[:eq], " \t")
		if !isToken(name) {
			return p, fmt.Errorf("malformed parameter name %q", name)
		}
		if seen[name] {
			return p, fmt.Errorf("parameter %q given twice", name)
		}
		seen[name] = true
		rest = trimBWS(rest[eq+1:])
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return p, fmt.Errorf("unterminated value of %q", name)
			}
			value, rest = rest[1:1+end], rest[2+end:]
			if strings.ContainsAny(value, "\\\r\n") {
				return p, fmt.Errorf("value of %q has a forbidden character", name)
			}
		} else {
			end := strings.IndexAny(rest, ", \t")
			if end < 0 {
				end = len(rest)
			}
			value, rest = rest[:end], rest[end:]
			if name != "created" && name != "expires" {
				return p, fmt.Errorf("value of %q must be quoted", name)
			}
		}
		switch name {
		case "keyId", "algorithm", "headers":
			if strings.IndexByte(value, ',') >= 0 {
				return p, fmt.Errorf("value of %q has a comma", name)
			}
		}
		switch name {
		case "keyId":
			p.KeyID = value
		case "algorithm":
			p.Algorithm = value
		case "headers":
			p.Headers = strings.Split(value, " ")
			for i, hd := range p.Headers {
				if !coverable(hd) || slices.Contains(p.Headers[:i], hd) {
					return p, fmt.Errorf("bad headers list %q", value)
				}
			}
		case "signature":
			sig, err := base64.StdEncoding.Strict().DecodeString(value)
			if err != nil || len(sig) == 0 {
				return p, errors.New("signature is not base64")
			}
			p.Signature = sig
		case "created", "expires":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n <= 0 {
				return p, fmt.Errorf("%s is not a positive integer", name)
			}
			if name == "created" {
				p.Created = n
			} else {
				p.Expires = n
			}
		}
		rest = trimBWS(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return p, errors.New("parameters must be separated by commas")
		}
		rest = rest[1:]
	}
	switch {
	case p.KeyID == "":
		return p, errors.New("keyId missing")
	case p.Headers == nil:
		return p, errors.New("headers missing")
	case p.Signature == nil:
		return p, errors.New("signature missing")
	case slices.Contains(p.Headers, hdrCreated) && p.Created == 0:
		return p, errors.New("(created) is covered but created is missing")
	case slices.Contains(p.Headers, hdrExpires) && p.Expires == 0:
		return p, errors.New("(expires) is covered but expires is missing")
	}
	return p, nil
}

// trimBWS drops the optional whitespace ("bad whitespace" in RFC 7230)
// allowed around separators.
func trimBWS(s string) string { return strings.TrimLeft(s, " \t") }

func isToken(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// coverable reports whether a name may appear in the headers parameter: a
// pseudo-header, or a lower-case header name other than the two that carry
// signatures themselves.
func coverable(name string) bool {
	switch name {
	case hdrRequestTarget, hdrCreated, hdrExpires:
		return true
	case "", "signature", "authorization":
		return false
	}
	for i := 0; i < len(name); i++ {
		if !tchar(name[i]) || 'A' <= name[i] && name[i] <= 'Z' {
			return false
		}
	}
	return true
}

// tchar reports whether c may appear in an HTTP token (RFC 9110 5.6.2).
func tchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Header is the canonical Signature header of p: what VerifySignature hands
// go-fed. created and expires appear only when the header list covers them,
// so go-fed's own checks of them (created not in the future, expires not in
// the past, each with 10 s of slack on the process clock) apply only then;
// the inbox checks both, more strictly, before (CheckSignatureTime).
func (p SignatureParams) Header() string {
	var b strings.Builder
	fmt.Fprintf(&b, `keyId="%s"`, p.KeyID)
	if p.Algorithm != "" {
		fmt.Fprintf(&b, `,algorithm="%s"`, p.Algorithm)
	}
	fmt.Fprintf(&b, `,headers="%s",signature="%s"`, strings.Join(p.Headers, " "), base64.StdEncoding.EncodeToString(p.Signature))
	if slices.Contains(p.Headers, hdrCreated) {
		fmt.Fprintf(&b, ",created=%d", p.Created)
	}
	if slices.Contains(p.Headers, hdrExpires) {
		fmt.Fprintf(&b, ",expires=%d", p.Expires)
	}
	return b.String()
}

// MissingSignedHeaders returns the headers a delivery must sign
// (SignedHeaders) that p does not cover.
func MissingSignedHeaders(p SignatureParams) []string { return MissingHeaders(p, SignedHeaders) }

// MissingHeaders returns the headers of required that p does not cover.
func MissingHeaders(p SignatureParams, required []string) []string {
	var missing []string
	for _, h := range required {
		if !slices.Contains(p.Headers, h) {
			missing = append(missing, h)
		}
	}
	return missing
}

// UncoveredHeaders returns the headers p covers that r does not carry, or
// carries on more than one line (a signer never does; a header read twice
// could be checked in one reading and signed in another).
func UncoveredHeaders(r *http.Request, p SignatureParams) []string {
	var bad []string
	for _, h := range p.Headers {
		switch h {
		case hdrRequestTarget, hdrCreated, hdrExpires:
			continue
		case "host":
			if len(r.Header.Values("Host")) == 0 && r.Host != "" {
				continue
			}
		}
		if len(r.Header.Values(h)) != 1 {
			bad = append(bad, h)
		}
	}
	return bad
}

// createdSlack is how far in the future a signature's created time may be.
// go-fed refuses more than 10 s; the inbox's tighter bound means go-fed's
// check, run a moment later on the same clock, never refuses what the inbox
// let through, so the verdict stays the inbox's.
const createdSlack = 5 * time.Second

// CheckSignatureTime refuses a signature created in the future or already
// expired, by the receiver's clock.
func CheckSignatureTime(p SignatureParams, now time.Time) error {
	if p.Created != 0 && time.Unix(p.Created, 0).After(now.Add(createdSlack)) {
		return errors.New("the signature's created time is in the future")
	}
	if p.Expires != 0 && time.Unix(p.Expires, 0).Before(now) {
		return errors.New("the signature has expired")
	}
	return nil
}

// AlgorithmAllowed reports whether a signature's algorithm parameter is
// acceptable for an RSA key: absent, "hs2019" (the key decides, and our keys
// are RSA with SHA-256) or "rsa-sha256". Anything else is refused.
func AlgorithmAllowed(alg string) bool {
	return alg == "" || alg == "hs2019" || alg == "rsa-sha256"
}

// setHostDate sets the Host and Date a signed request covers. go-fed reads
// host from the header map, so Host is set there too.
func setHostDate(r *http.Request, now time.Time) {
	r.Host = r.URL.Host
	r.Header.Set("Host", r.URL.Host)
	r.Header.Set("Date", now.UTC().Format(http.TimeFormat))
}

// SignRequest prepares r (a POST of body to a peer) for sending: it sets
// Host, Date and Content-Type, and signs (request-target), host, date and
// digest with the keyring's current signing key. A keyring that holds its
// key in memory signs through go-fed/httpsig; any other is given the signing
// string built here, which is byte for byte what go-fed would sign.
func SignRequest(ctx context.Context, kr keys.Keyring, domain string, r *http.Request, body []byte, now time.Time) error {
	setHostDate(r, now)
	r.Header.Set("Content-Type", "application/json")
	keyID := func(kid string) string { return KeyID(domain, kid) }
	if hs, ok := kr.(keys.HTTPSigner); ok {
		_, err := hs.SignRequest(ctx, r, body, SignedHeaders, keyID)
		return err
	}
	return signManually(ctx, kr, r, body, keyID)
}

// signManually builds the draft-cavage signing string and header itself.
func signManually(ctx context.Context, kr keys.Keyring, r *http.Request, body []byte, keyID func(string) string) error {
	r.Header.Set("Digest", DigestHeader(body))
	return signHeaders(ctx, kr, r, SignedHeaders, keyID)
}

// signHeaders signs the headers of r that headers names, in that order,
// with the keyring's current signing key, and sets the Signature header.
func signHeaders(ctx context.Context, kr keys.Keyring, r *http.Request, headers []string, keyID func(string) string) error {
	p := SignatureParams{Algorithm: "hs2019", Headers: headers}
	ss, err := SigningString(r, p)
	if err != nil {
		return fmt.Errorf("federation: sign: %w", err)
	}
	kid, sig, err := kr.Sign(ctx, []byte(ss))
	if err != nil {
		return fmt.Errorf("federation: sign: %w", err)
	}
	p.KeyID, p.Signature = keyID(kid), sig
	r.Header.Set("Signature", p.Header())
	return nil
}

// SigningString is the draft-cavage signing string of r for the headers p
// covers, in p's order, as go-fed/httpsig computes it: the lower-case name,
// ": ", and the header's values trimmed and joined with ", "; host falls
// back to r.Host; (request-target) is the lower-case method and the path
// with its query; (created) and (expires) are p's parameters. A covered
// header r lacks is an error.
func SigningString(r *http.Request, p SignatureParams) (string, error) {
	lines := make([]string, 0, len(p.Headers))
	for _, h := range p.Headers {
		switch h {
		case hdrRequestTarget:
			target := r.URL.Path
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			lines = append(lines, h+": "+strings.ToLower(r.Method)+" "+target)
			continue
		case hdrCreated, hdrExpires:
			n := p.Created
			if h == hdrExpires {
				n = p.Expires
			}
			if n == 0 {
				return "", fmt.Errorf("federation: %s is covered but has no value", h)
			}
			lines = append(lines, h+": "+strconv.FormatInt(n, 10))
			continue
		}
		vals := slices.Clone(r.Header.Values(h))
		if h == "host" && len(vals) == 0 && r.Host != "" {
			vals = []string{r.Host}
		}
		if len(vals) == 0 {
			return "", fmt.Errorf("federation: covered header %q is missing", h)
		}
		for i := range vals {
			vals[i] = strings.TrimSpace(vals[i])
		}
		lines = append(lines, h+": "+strings.Join(vals, ", "))
	}
	return strings.Join(lines, "\n"), nil
}

// DigestHeader is the Digest header value of body: SHA-256, base64.
func DigestHeader(body []byte) string {
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sha256Sum(body))
}

// VerifySignature checks r's signature, as p (the strict parse of its
// Signature header) describes it, with pub through go-fed/httpsig, as
// RSASSA-PKCS1-v1_5 with SHA-256.
//
// go-fed never sees the peer's header or any header p does not cover: it is
// handed a request carrying only the covered headers and p's canonical
// header (p.Header). So the bytes verified are the signing string of exactly
// p's covered headers, in p's order, and the key is the one the caller chose
// from p's keyId.
func VerifySignature(r *http.Request, p SignatureParams, pub *rsa.PublicKey) error {
	vr := &http.Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: make(http.Header, len(p.Headers)+1)}
	for _, h := range p.Headers {
		k := textproto.CanonicalMIMEHeaderKey(h)
		if vals := r.Header[k]; len(vals) > 0 {
			vr.Header[k] = vals
		}
	}
	vr.Header.Set("Signature", p.Header())
	v, err := httpsig.NewVerifier(vr)
	if err != nil {
		return err
	}
	return v.Verify(pub, httpsig.RSA_SHA256)
}
