package fednode

import (
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"bob", "bob@local.test", true},
		{"Bob", "bob@local.test", true},
		{"bob@Other-Node.Example", "bob@other-node.example", true},
		{"bob@other.example:8443", "bob@other.example:8443", true},
		{"bob@127.0.0.1:8080", "bob@127.0.0.1:8080", true},
		{"bob@[::1]:8080", "bob@[::1]:8080", true},
		{"bob@[0:0::1]", "bob@[::1]", true},
		{"a_b-c@x.y", "a_b-c@x.y", true},
		{strings.Repeat("a", 64), strings.Repeat("a", 64) + "@local.test", true},
		{"", "", false},
		{"@x.y", "", false},
		{"bob@", "", false},
		{"bob@x.y@z", "", false},
		{"bo b", "", false},
		{"bob.smith", "", false},
		{strings.Repeat("a", 65), "", false},
		{"bob@-x.y", "", false},
		{"bob@x..y", "", false},
		{"bob@x.y:0", "", false},
		{"bob@x.y:65536", "", false},
		{"bob@x.y:08080", "", false},
		{"bob@x.y:", "", false},
		{"bob@::1", "", false},
		{"bob@[127.0.0.1]", "", false},
		{"bob@[::1", "", false},
		{"bob@[::1]x", "", false},
		{"bob@x_y.z", "", false},
		{"bob@exämple.org", "", false},
		{"bøb", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAddress(tt.in, "local.test")
			if (err == nil) != tt.ok {
				t.Fatalf("ParseAddress(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && got.String() != tt.want {
				t.Fatalf("ParseAddress(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !tt.ok && ErrorCode(err) != EInvalidAddress {
				t.Fatalf("error code %q, want %q", ErrorCode(err), EInvalidAddress)
			}
		})
	}
}

func TestValidUserID(t *testing.T) {
	if !ValidUserID(strings.Repeat("x", 128)) || ValidUserID(strings.Repeat("x", 129)) || ValidUserID("") || ValidUserID("a b") {
		t.Fatal("user id rule: 1 to 128 of [A-Za-z0-9_-]")
	}
}

// FuzzParseAddress checks that whatever a peer or user sends, the parser
// either refuses it or returns a canonical address that parses to itself.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"bob", "bob@x.y", "bob@[::1]:80", "a@1.2.3.4:5", "@", "x@[", "x@y:", "A@B.C"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s, "local.test")
		if err != nil {
			return
		}
		if !ValidUsername(a.User) || a.User != CanonicalUsername(a.User) {
			t.Fatalf("%q: user part %q not canonical", s, a.User)
		}
		again, err := ParseAddress(a.String(), "other.test")
		if err != nil || again != a {
			t.Fatalf("%q -> %q does not round-trip: %v, %v", s, a, again, err)
		}
	})
}
