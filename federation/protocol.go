package federation

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/fednode/fednode"
)

// Protocol constants (docs/PROTOCOL.md).
const (
	Version       = 1
	ProtocolName  = "fednode/1"
	WellKnownPath = "/.well-known/fednode"
	InboxPath     = "/federation/inbox"

	// DocumentMediaType is the media type a node document must be served
	// as (parameters such as charset=utf-8 aside); anything else is treated
	// as if the peer were unreachable.
	DocumentMediaType = "application/json"

	MaxEnvelopeBytes  = 1 << 20  // an inbox refuses larger bodies before reading them
	MaxDocumentBytes  = 64 << 10 // a node document larger than this is refused
	MaxResponseBytes  = 64 << 10 // an inbox answer larger than this is refused
	MaxEnvelopeMsgs   = 64
	MaxEnvelopeKeys   = 64
	MaxSignatureBytes = 4096
)

// SignedHeaders are the headers every request must sign, in this order when
// we sign. A verifier requires all of them, in any order.
var SignedHeaders = []string{"(request-target)", "host", "date", "digest"}

var kidRE = regexp.MustCompile(`^(sig|enc)-[0-9a-f]{32}$`)

// KeyID is a key's full id on the wire: "<node domain>#<key id>", for
// example "b.example#enc-0123456789abcdef0123456789abcdef".
func KeyID(domain, kid string) string { return domain + "#" + kid }

// ParseKeyID splits a full key id into its node domain (canonical) and key
// id, refusing anything else.
func ParseKeyID(s string) (domain, kid string, err error) {
	d, k, ok := strings.Cut(s, "#")
	if !ok || !kidRE.MatchString(k) {
		return "", "", fmt.Errorf("federation: key id %q is not domain#(sig|enc)-<32 hex>", s)
	}
	cd, err := fednode.ParseDomain(d)
	if err != nil || cd != d {
		return "", "", fmt.Errorf("federation: key id %q does not name a canonical node domain", s)
	}
	return d, k, nil
}
