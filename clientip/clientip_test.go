package clientip

import (
	"net/http"
	"testing"
)

func req(remote string, xff ...string) *http.Request {
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func TestKey(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "fd00::/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
		req        *http.Request
	}{
		{"socket v4", "203.0.113.5", req("203.0.113.5:4000")},
		{"spoofed header from an untrusted peer is ignored", "203.0.113.5", req("203.0.113.5:4000", "1.2.3.4")},
		{"trusted proxy: rightmost untrusted hop", "198.51.100.7", req("10.1.1.1:80", "1.2.3.4, 198.51.100.7")},
		{"client forges a left hop behind a trusted proxy", "198.51.100.7", req("10.1.1.1:80", "6.6.6.6, 198.51.100.7")},
		{"chain of trusted proxies", "198.51.100.7", req("10.1.1.1:80", "198.51.100.7, 10.2.2.2, 10.3.3.3")},
		{"several header lines", "198.51.100.7", req("10.1.1.1:80", "6.6.6.6", "198.51.100.7, 10.2.2.2")},
		{"single trusted address", "198.51.100.9", req("192.0.2.1:80", "198.51.100.9")},
		{"hop with port", "198.51.100.7", req("10.1.1.1:80", "198.51.100.7:5555")},
		{"malformed hop stops the walk", "10.2.2.2", req("10.1.1.1:80", "198.51.100.7, garbage, 10.2.2.2")},
		{"trusted proxy, no header", "10.1.1.1", req("10.1.1.1:80")},
		{"IPv6 grouped by /64", "2001:db8:1:2::/64", req("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443")},
		{"same /64, same key", "2001:db8:1:2::/64", req("[2001:db8:1:2::1]:443")},
		{"IPv4-mapped counts as IPv4", "203.0.113.5", req("[::ffff:203.0.113.5]:443")},
		{"IPv6 client behind a trusted v6 proxy", "2001:db8:9:9::/64", req("[fd00::1]:80", "[2001:db8:9:9::42]:1234")},
		{"mapped hop", "198.51.100.7", req("10.1.1.1:80", "::ffff:198.51.100.7")},
		{"garbage remote", "unknown", req("nonsense")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Key(tt.req); got != tt.want {
				t.Fatalf("Key = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := New([]string{"not a cidr"}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}

func TestParseKey(t *testing.T) {
	for in, want := range map[string]string{"203.0.113.5": "203.0.113.5", "::ffff:203.0.113.5": "203.0.113.5",
		"2001:db8:1:2::5": "2001:db8:1:2::/64", "2001:db8:1:2::/64": "2001:db8:1:2::/64"} {
		if got, err := ParseKey(in); err != nil || got != want {
			t.Errorf("ParseKey(%q) = %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "10.0.0.0/8", "2001:db8::/48"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func FuzzKey(f *testing.F) {
	r, _ := New([]string{"10.0.0.0/8"})
	f.Add("10.0.0.1:80", "1.2.3.4, [2001:db8::1]:80")
	f.Add("1.2.3.4:5", "")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		k := r.Key(req(remote, xff))
		if k == "" {
			t.Fatal("empty key")
		}
		if k != "unknown" {
			if _, err := ParseKey(k); err != nil {
				t.Fatalf("key %q does not parse back: %v", k, err)
			}
		}
	})
}
