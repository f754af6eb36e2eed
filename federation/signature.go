package federation

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-fed/httpsig"

	"github.com/fednode/fednode/keys"
)

// SignatureParams is a parsed Signature header (draft-cavage-http-signatures-12).
type SignatureParams struct {
	KeyID     string
	Algorithm string // "" when absent
	Headers   []string
	Signature []byte
	Created   int64
	Expires   int64
}

// ParseSignature parses a Signature header strictly: comma-separated
// name="value" parameters (created and expires may be bare integers), no
// parameter twice, keyId, headers and signature required, the signature in
// standard base64, the header list lower-case with no name twice. go-fed's
// own parser is lenient (it splits on commas and takes the last duplicate),
// so the inbox parses with this first and only then lets go-fed verify.
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
		rest = strings.TrimLeft(rest, " \t")
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return p, errors.New("malformed parameter")
		}
		name := rest[:eq]
		if !isToken(name) {
			return p, fmt.Errorf("malformed parameter name %q", name)
		}
		if seen[name] {
			return p, fmt.Errorf("parameter %q given twice", name)
		}
		seen[name] = true
		rest = rest[eq+1:]
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
		case "keyId":
			p.KeyID = value
		case "algorithm":
			p.Algorithm = value
		case "headers":
			p.Headers = strings.Split(value, " ")
			for i, hd := range p.Headers {
				if hd == "" || hd != strings.ToLower(hd) || slices.Contains(p.Headers[:i], hd) {
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
		default:
			// Unknown parameters are ignored, as the draft says.
		}
		rest = strings.TrimLeft(rest, " \t")
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
	}
	return p, nil
}

func isToken(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// MissingSignedHeaders returns the required headers p does not cover.
func MissingSignedHeaders(p SignatureParams) []string {
	var missing []string
	for _, h := range SignedHeaders {
		if !slices.Contains(p.Headers, h) {
			missing = append(missing, h)
		}
	}
	return missing
}

// AlgorithmAllowed reports whether a signature's algorithm parameter is
// acceptable for an RSA key: absent, "hs2019" (the key decides, and our keys
// are RSA with SHA-256) or "rsa-sha256". Anything else is refused.
func AlgorithmAllowed(alg string) bool {
	return alg == "" || alg == "hs2019" || alg == "rsa-sha256"
}

// SignRequest prepares r (a POST of body to a peer) for sending: it sets
// Host, Date and Content-Type, and signs (request-target), host, date and
// digest with the keyring's current signing key. A keyring that holds its
// key in memory signs through go-fed/httpsig; any other is given the signing
// string built here, which is byte for byte what go-fed would sign.
func SignRequest(ctx context.Context, kr keys.Keyring, domain string, r *http.Request, body []byte, now time.Time) error {
	r.Host = r.URL.Host
	r.Header.Set("Host", r.URL.Host) // go-fed reads host from the header map
	r.Header.Set("Date", now.UTC().Format(http.TimeFormat))
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
	kid, sig, err := kr.Sign(ctx, []byte(SigningString(r, SignedHeaders)))
	if err != nil {
		return fmt.Errorf("federation: sign: %w", err)
	}
	r.Header.Set("Signature", fmt.Sprintf(`keyId="%s",algorithm="hs2019",headers="%s",signature="%s"`,
		keyID(kid), strings.Join(SignedHeaders, " "), base64.StdEncoding.EncodeToString(sig)))
	return nil
}

// SigningString is the draft-cavage signing string of r over headers, as
// go-fed/httpsig computes it.
func SigningString(r *http.Request, headers []string) string {
	var lines []string
	for _, h := range headers {
		if h == "(request-target)" {
			target := r.URL.Path
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			lines = append(lines, h+": "+strings.ToLower(r.Method)+" "+target)
			continue
		}
		vals := r.Header.Values(h)
		if h == "host" && len(vals) == 0 {
			vals = []string{r.Host}
		}
		for i := range vals {
			vals[i] = strings.TrimSpace(vals[i])
		}
		lines = append(lines, h+": "+strings.Join(vals, ", "))
	}
	return strings.Join(lines, "\n")
}

// DigestHeader is the Digest header value of body: SHA-256, base64.
func DigestHeader(body []byte) string {
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sha256Sum(body))
}

// VerifySignature checks r's HTTP signature with pub through go-fed/httpsig,
// as RSA-SHA256. The caller has already parsed and vetted the parameters.
func VerifySignature(r *http.Request, pub *rsa.PublicKey) error {
	v, err := httpsig.NewVerifier(r)
	if err != nil {
		return err
	}
	return v.Verify(pub, httpsig.RSA_SHA256)
}
