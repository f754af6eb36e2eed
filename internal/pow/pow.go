// Package pow is the node's self-hosted proof-of-work challenge, in the
// manner of ALTCHA (https://altcha.org): the server hands out a puzzle that
// costs a client about a second to solve and the server one hash to check,
// and login and registration ask for a solved one after repeated failures.
//
// Crypto summary: proof-of-work challenges.
//
// What it protects: the cost of guessing passwords and of mass registration.
// After a few failures a login or registration must carry a solution, so each
// further guess costs the client about CHALLENGE_MAX_NUMBER/2 hashes of
// work, and the server still one SHA-256 and one HMAC to check it.
// Against whom: clients that automate many attempts. It does not stop a
// patient attacker; it makes each attempt cost CPU the attacker pays.
// Construction: the server picks a random salt (12 bytes, hex) carrying the
// expiry and the id of the key ("<hex>?expires=<unix>&kid=<kid>&", the
// final "&" so that no digit of the number can be moved into the salt, see
// ALTCHA's 2024 advisory) and a secret random number n in [0, maxnumber],
// and publishes
//
//	challenge = hex(SHA-256(salt || decimal(n)))
//	signature = hex(HMAC-SHA-256(K, "fednode-pow-v1" 0 algorithm 0 salt 0 challenge))
//
// The client tries n = 0, 1, ... until the hash matches (maxnumber/2 tries
// on average) and sends back {algorithm, challenge, number, salt, signature}
// as base64 JSON, exactly what the ALTCHA widget submits. The server checks
// the expiry in the salt, the signature (so only salts and challenges it
// issued pass, and the salt, hence the expiry, cannot be edited), and the
// hash; the caller then spends the challenge once (a lease on it until its
// expiry, shared by every replica). K is derived by the caller (node/) with
// HKDF-SHA-256 from the JWT secret under the label "fednode challenge hmac
// v1", so every replica shares it and it rotates with that secret; the kid
// names which secret version, so a rotation breaks no challenge in flight.
// Why these constants: SHA-256 is what WebCrypto offers in every browser;
// 12 bytes of salt make two challenges never share a hash; the signature is
// the full 32-byte HMAC; the difficulty is the node's option.
package pow

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fednode/fednode/internal/strictjson"
)

// Algorithm is the only hash a challenge uses.
const Algorithm = "SHA-256"

// MaxPayloadLen bounds a solution as sent (base64 of its JSON); ours are
// about 300 bytes.
const MaxPayloadLen = 1024

// maxSaltLen bounds the salt of a solution; ours are under 80 bytes.
const maxSaltLen = 200

// sigLabel separates this HMAC from any other use of the key.
const sigLabel = "fednode-pow-v1"

// Challenge is what GET /api/auth/challenge answers: ALTCHA's format.
type Challenge struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	MaxNumber int64  `json:"maxnumber"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// Solution is what a client sends back, base64 of its JSON (Encode).
type Solution struct {
	Algorithm string `json:"algorithm" strictjson:"required"`
	Challenge string `json:"challenge" strictjson:"required"`
	Number    int64  `json:"number" strictjson:"required"`
	Salt      string `json:"salt" strictjson:"required"`
	Signature string `json:"signature" strictjson:"required"`
	// Took is the solving time in ms the ALTCHA widget reports; ignored.
	Took int64 `json:"took,omitempty"`
}

// Why a solution is refused. Every refusal wraps one of them.
var (
	ErrMalformed = errors.New("pow: the solution does not parse")
	ErrExpired   = errors.New("pow: the challenge has expired")
	ErrForged    = errors.New("pow: the challenge was not issued by this node, or its key is retired")
	ErrWrong     = errors.New("pow: the number does not solve the challenge")
)

// New makes a challenge that expires at expires, signed with key, whose id
// kid is carried in the salt for Verify's lookup ("" for none).
func New(key []byte, kid string, maxNumber int64, expires time.Time) (Challenge, error) {
	if maxNumber < 1 {
		return Challenge{}, fmt.Errorf("pow: maxnumber %d must be positive", maxNumber)
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Challenge{}, err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(maxNumber+1))
	if err != nil {
		return Challenge{}, err
	}
	q := url.Values{"expires": {strconv.FormatInt(expires.Unix(), 10)}}
	if kid != "" {
		q.Set("kid", kid)
	}
	salt := hex.EncodeToString(raw[:]) + "?" + q.Encode() + "&"
	c := Challenge{Algorithm: Algorithm, MaxNumber: maxNumber, Salt: salt, Challenge: hashOf(salt, n.Int64())}
	c.Signature = sign(key, c.Algorithm, c.Salt, c.Challenge)
	return c, nil
}

func hashOf(salt string, n int64) string {
	sum := sha256.Sum256([]byte(salt + strconv.FormatInt(n, 10)))
	return hex.EncodeToString(sum[:])
}

func sign(key []byte, algorithm, salt, challenge string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sigLabel + "\x00" + algorithm + "\x00" + salt + "\x00" + challenge))
	return hex.EncodeToString(m.Sum(nil))
}

// Encode is the payload a client sends: base64 (standard, padded, as the
// browser's btoa makes it) of the solution's JSON.
func Encode(s Solution) string {
	b, _ := json.Marshal(s)
	return base64.StdEncoding.EncodeToString(b)
}

// ParseSolution decodes a payload as a client sent it: standard or
// URL-safe base64, padded or not, of one strict JSON object whose fields
// have the shapes New gives them. It checks form only; Verify checks truth.
func ParseSolution(payload string) (Solution, error) {
	var s Solution
	if len(payload) == 0 || len(payload) > MaxPayloadLen {
		return s, fmt.Errorf("%w: empty or longer than %d bytes", ErrMalformed, MaxPayloadLen)
	}
	raw, err := decodeBase64(payload)
	if err != nil {
		return s, fmt.Errorf("%w: not base64", ErrMalformed)
	}
	if err := strictjson.Decode(raw, &s); err != nil {
		return s, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case s.Algorithm != Algorithm:
		return s, fmt.Errorf("%w: algorithm %q is not %s", ErrMalformed, s.Algorithm, Algorithm)
	case !isHex64(s.Challenge) || !isHex64(s.Signature):
		return s, fmt.Errorf("%w: challenge and signature must be 64 lower-case hex digits", ErrMalformed)
	case s.Number < 0:
		return s, fmt.Errorf("%w: negative number", ErrMalformed)
	case len(s.Salt) > maxSaltLen || !printableASCII(s.Salt):
		return s, fmt.Errorf("%w: salt", ErrMalformed)
	}
	return s, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// SaltParams returns the expiry and key id a salt carries. A salt that
// does not end in "&" or has no expiry is malformed.
func SaltParams(salt string) (expires time.Time, kid string, err error) {
	_, query, ok := strings.Cut(salt, "?")
	if !ok || !strings.HasSuffix(salt, "&") {
		return time.Time{}, "", fmt.Errorf("%w: salt carries no parameters", ErrMalformed)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: salt parameters: %v", ErrMalformed, err)
	}
	sec, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || len(q["expires"]) != 1 || len(q["kid"]) > 1 {
		return time.Time{}, "", fmt.Errorf("%w: salt expiry", ErrMalformed)
	}
	return time.Unix(sec, 0), q.Get("kid"), nil
}

// Verify checks a parsed solution at now: not expired, signed by the key
// keyFor returns for the salt's kid, and solved. It does not spend it: the
// caller does, once, for as long as it has not expired.
func Verify(s Solution, keyFor func(kid string) ([]byte, error), now time.Time) error {
	expires, kid, err := SaltParams(s.Salt)
	if err != nil {
		return err
	}
	if !now.Before(expires) {
		return ErrExpired
	}
	key, err := keyFor(kid)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrForged, err)
	}
	if subtle.ConstantTimeCompare([]byte(sign(key, s.Algorithm, s.Salt, s.Challenge)), []byte(s.Signature)) != 1 {
		return ErrForged
	}
	if hashOf(s.Salt, s.Number) != s.Challenge {
		return ErrWrong
	}
	return nil
}

// Solve finds the number of a challenge, as a client does: it tries 0 to
// MaxNumber in order, checking ctx every few thousand tries.
func Solve(ctx context.Context, c Challenge) (Solution, error) {
	if c.Algorithm != Algorithm {
		return Solution{}, fmt.Errorf("pow: cannot solve algorithm %q", c.Algorithm)
	}
	want, err := hex.DecodeString(c.Challenge)
	if err != nil || len(want) != sha256.Size {
		return Solution{}, fmt.Errorf("pow: challenge %q is not a SHA-256 in hex", c.Challenge)
	}
	buf := make([]byte, 0, len(c.Salt)+20)
	buf = append(buf, c.Salt...)
	start := time.Now()
	for n := int64(0); n <= c.MaxNumber; n++ {
		if n&0xfff == 0 && ctx.Err() != nil {
			return Solution{}, ctx.Err()
		}
		sum := sha256.Sum256(strconv.AppendInt(buf, n, 10))
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			return Solution{Algorithm: c.Algorithm, Challenge: c.Challenge, Number: n, Salt: c.Salt, Signature: c.Signature,
				Took: time.Since(start).Milliseconds()}, nil
		}
	}
	return Solution{}, errors.New("pow: no number up to maxnumber solves the challenge")
}
