package fednode

import (
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Limits from the seed's validation rules.
const (
	MaxUsernameLen = 64
	MaxUserIDLen   = 128
	MaxDomainLen   = 253 + 6 // host plus ":65535"
)

var (
	usernameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	userIDRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	labelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// ValidUsername reports whether s is a valid username: ASCII letters, digits,
// underscore and hyphen, 1 to 64 characters.
func ValidUsername(s string) bool { return usernameRE.MatchString(s) }

// ValidUserID reports whether s is a valid user id: the username alphabet,
// 1 to 128 characters.
func ValidUserID(s string) bool { return userIDRE.MatchString(s) }

// CanonicalUsername is the form under which a username is stored and compared:
// usernames are unique case-insensitively, so "Alice" and "alice" are one
// account. The alphabet is ASCII, so lower-casing is unambiguous.
func CanonicalUsername(s string) string { return strings.ToLower(s) }

// Address is a fully qualified user address, user@domain. Domain is a node's
// NODE_DOMAIN: a lower-case DNS name or IP literal with an optional port.
type Address struct {
	User   string
	Domain string
}

func (a Address) String() string { return a.User + "@" + a.Domain }

// IsZero reports whether a is the zero Address.
func (a Address) IsZero() bool { return a.User == "" && a.Domain == "" }

// ParseAddress parses "user" or "user@domain". A bare user is given
// localDomain. The user part is canonicalised (lower case); the domain is
// validated and lower-cased. Nothing is resolved.
func ParseAddress(s, localDomain string) (Address, error) {
	user, domain, hasAt := strings.Cut(s, "@")
	if !hasAt {
		domain = localDomain
	}
	if !ValidUsername(user) {
		return Address{}, Errorf(EInvalidAddress, "user part must be 1 to 64 letters, digits, '_' or '-'")
	}
	d, err := ParseDomain(domain)
	if err != nil {
		return Address{}, err
	}
	return Address{User: CanonicalUsername(user), Domain: d}, nil
}

// ParseDomain validates a node domain, host[:port], and returns it in
// canonical form (lower case, no trailing dot, no default port stripping:
// the port is part of the node's identity).
func ParseDomain(s string) (string, error) {
	bad := Errorf(EInvalidAddress, "domain must be a host name or IP address with an optional port")
	if s == "" || len(s) > MaxDomainLen {
		return "", bad
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") { // [v6]:port or [v6]
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", bad
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if s[end+1:] != "" && !strings.HasPrefix(s[end+1:], ":") {
			return "", bad
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.To4() != nil {
			return "", bad
		}
		host = "[" + ip.String() + "]"
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
		host = strings.ToLower(host)
		if ip := net.ParseIP(host); ip != nil {
			if ip.To4() == nil {
				return "", bad // bare IPv6 must be bracketed
			}
			host = ip.String()
		} else if !validHostname(host) {
			return "", bad
		}
	}
	if port != "" || strings.HasSuffix(s, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return "", bad
		}
		return host + ":" + port, nil
	}
	return host, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if !labelRE.MatchString(label) {
			return false
		}
	}
	return true
}
