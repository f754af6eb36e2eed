package fednode

import (
	"crypto/rand"
	"encoding/binary"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Content and tag limits from the seed.
const (
	MaxContentChars = 10000
	MaxTags         = 10
	MaxTagLen       = 32
)

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Delivery states of a message, as its sender sees them.
const (
	StatusQueued    = "queued"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Message is one message as stored and as served. From and To are fully
// qualified. CreatedAt is set by the node that accepted it, in UTC.
type Message struct {
	ID        string
	From      Address
	To        Address
	Content   string
	Tags      []string
	CreatedAt time.Time
	Status    string
	// Reason explains a failed delivery; empty otherwise.
	Reason string
	// ReasonCode is Reason's stable code (a Delivery* constant).
	ReasonCode string `json:",omitempty"`
	// E2E, when set, is the end-to-end encrypted body; Content is then
	// empty and Tags nil: they are inside the ciphertext.
	E2E *E2E `json:",omitempty"`
}

// NormalizeContent applies the seed's content rules in order: null bytes are
// removed first, then the result must be valid UTF-8, not empty, and at most
// 10,000 Unicode code points.
func NormalizeContent(s string) (string, error) {
	s = strings.ReplaceAll(s, "\x00", "")
	switch {
	case !utf8.ValidString(s):
		return "", FieldError(EInvalidContent, "content", "content must be valid UTF-8")
	case strings.TrimSpace(s) == "":
		return "", FieldError(EInvalidContent, "content", "content must not be empty")
	case utf8.RuneCountInString(s) > MaxContentChars:
		return "", FieldError(EInvalidContent, "content", "content must be at most %d characters", MaxContentChars)
	}
	return s, nil
}

// ValidateTags checks the seed's tag rules: at most 10 tags, each 1 to 32 of
// letters, digits, '_' or '-', no duplicates. Tags that differ only in
// letter case are the same tag, so ["Tag","tag"] is refused rather than
// folded: a tag is kept as its sender wrote it, and nothing is changed
// silently.
func ValidateTags(tags []string) error {
	if len(tags) > MaxTags {
		return FieldError(EInvalidTags, "tags", "at most %d tags are allowed", MaxTags)
	}
	seen := make(map[string]bool, len(tags))
	for i, t := range tags {
		if !tagRE.MatchString(t) {
			return FieldError(EInvalidTags, "tags", "tag %d must be 1 to %d letters, digits, '_' or '-'", i, MaxTagLen)
		}
		k := strings.ToLower(t)
		if seen[k] {
			return FieldError(EInvalidTags, "tags", "tag %q appears twice (tags are compared ignoring letter case)", t)
		}
		seen[k] = true
	}
	return nil
}

// NewID returns a new message or session id: 26 characters of Crockford
// base32 encoding 48 bits of milliseconds since the epoch and 80 random bits.
// Ids sort by creation time to the millisecond and are unique across nodes
// with overwhelming probability.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("fednode: crypto/rand failed: " + err.Error()) // cannot happen on supported platforms
	}
	return encodeBase32(b)
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func encodeBase32(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

var idRE = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)

// ValidID reports whether s has the form of an id made by NewID.
func ValidID(s string) bool { return idRE.MatchString(s) && s[0] <= '7' }

// Entry is a message at its position in one user's mailbox. Cursor values
// increase in the order messages were accepted into that mailbox and never
// change, so "everything after cursor N" is a stable query.
type Entry struct {
	Cursor  uint64
	Message Message
}
