package federation

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// DigestMatches reports whether a Digest header holds a SHA-256 digest equal
// to that of body. Other algorithms in the header are ignored; SHA-256 must
// be there.
func DigestMatches(header string, body []byte) bool {
	want := sha256Sum(body)
	for _, part := range strings.Split(header, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(alg, "SHA-256") {
			continue
		}
		got, err := base64.StdEncoding.Strict().DecodeString(val)
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	}
	return false
}
