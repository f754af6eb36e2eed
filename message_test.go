package fednode

import (
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNormalizeContent(t *testing.T) {
	long := strings.Repeat("é", MaxContentChars)
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "hello", "hello", true},
		{"null bytes removed first", "he\x00llo\x00", "hello", true},
		{"exactly the limit in code points", long, long, true},
		{"limit counted after null removal", long + "\x00\x00", long, true},
		{"one over the limit", long + "x", "", false},
		{"empty", "", "", false},
		{"only null bytes", "\x00\x00", "", false},
		{"only spaces", "  \n\t", "", false},
		{"invalid utf-8", "a\xffb", "", false},
		{"surrogate half", "a\xed\xa0\x80b", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeContent(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if got != tt.want {
				t.Fatalf("got %d chars, want %d", len(got), len(tt.want))
			}
			if err != nil {
				if e := err.(*Error); e.Field != "content" {
					t.Fatalf("error must name the field, got %+v", e)
				}
			}
		})
	}
}

func TestValidateTags(t *testing.T) {
	ten := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	tests := []struct {
		name string
		tags []string
		ok   bool
	}{
		{"none", nil, true},
		{"ten", ten, true},
		{"eleven", append(append([]string{}, ten...), "k"), false},
		{"32 chars", []string{strings.Repeat("x", 32)}, true},
		{"33 chars", []string{strings.Repeat("x", 33)}, false},
		{"empty tag", []string{""}, false},
		{"space", []string{"a b"}, false},
		{"hash sign", []string{"#go"}, false},
		{"duplicate", []string{"go", "go"}, false},
		{"duplicate in upper case", []string{"a", "GO", "Go"}, false},
		{"distinct in any case", []string{"Go", "golang", "GO-1"}, true},
		{"case differs: the same tag", []string{"Go", "go"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTags(tt.tags)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && err.(*Error).Field != "tags" {
				t.Fatal("error must name the field")
			}
		})
	}
}

func TestNewIDSortsByTimeAndIsValid(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewID(base.Add(time.Duration(i) * time.Millisecond))
		if !ValidID(id) {
			t.Fatalf("NewID produced invalid id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids made in time order must sort in time order")
	}
	for _, bad := range []string{"", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAVX", "01ARZ3NDEKTSV4RRFFQ69G5FAU", "81ARZ3NDEKTSV4RRFFQ69G5FAV"} {
		if ValidID(bad) {
			t.Fatalf("ValidID(%q) = true", bad)
		}
	}
}

func FuzzNormalizeContent(f *testing.F) {
	for _, s := range []string{"hi", "\x00", "a\xff", strings.Repeat("x", MaxContentChars+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizeContent(s)
		if err != nil {
			return
		}
		if strings.ContainsRune(out, 0) || !utf8.ValidString(out) || utf8.RuneCountInString(out) > MaxContentChars || strings.TrimSpace(out) == "" {
			t.Fatalf("accepted content breaks a rule: %q", out)
		}
	})
}
