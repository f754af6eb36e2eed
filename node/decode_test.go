package node

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fednode/fednode"
)

type sample struct {
	To      string   `json:"to"`
	Content string   `json:"content"`
	Tags    []string `json:"tags"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, body, code, field string
	}{
		{"ok", `{"to":"bob","content":"hi","tags":["a"]}`, "", ""},
		{"ok with spaces and null tags", ` { "to" : "bob" , "tags" : null } `, "", ""},
		{"empty", ``, fednode.EInvalidJSON, ""},
		{"array", `[]`, fednode.EInvalidJSON, ""},
		{"string", `"x"`, fednode.EInvalidJSON, ""},
		{"unknown field", `{"to":"bob","admin":true}`, fednode.EUnknownField, "admin"},
		{"case-folded field", `{"To":"bob"}`, fednode.EUnknownField, "To"},
		{"duplicate field", `{"to":"bob","to":"eve"}`, fednode.EInvalidJSON, "to"},
		{"wrong type", `{"to":1}`, fednode.EInvalidJSON, "to"},
		{"wrong element type", `{"tags":[1]}`, fednode.EInvalidJSON, "tags"},
		{"trailing object", `{"to":"bob"}{"to":"eve"}`, fednode.EInvalidJSON, ""},
		{"trailing garbage", `{"to":"bob"} x`, fednode.EInvalidJSON, ""},
		{"unterminated", `{"to":"bob"`, fednode.EInvalidJSON, ""},
		{"bad value", `{"to":}`, fednode.EInvalidJSON, ""},
		{"missing required", `{"content":"x"}`, fednode.EMissingField, "to"},
		{"invalid UTF-8", "{\"to\":\"a\xffb\"}", fednode.EInvalidEncoding, "to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sample
			err := decodeJSON([]byte(tt.body), &s, "to")
			if tt.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if s.To != "bob" {
					t.Fatalf("decoded %+v", s)
				}
				return
			}
			e, ok := err.(*fednode.Error)
			if !ok || e.Code != tt.code || e.Field != tt.field {
				t.Fatalf("got %#v, want code %s field %q", err, tt.code, tt.field)
			}
		})
	}
}

// FuzzDecodeJSON: any body either is refused with one of our codes or
// decodes into a value that re-decodes identically; it never panics.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"to":"bob","content":"hi","tags":["a"]}`, `{}`, `{"to":"a","to":"b"}`, `[`, `{"tags":[1,2]}`, `{"x":{"y":[]}}`, "{\"to\":\"\\u0000\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var s sample
		err := decodeJSON([]byte(body), &s, "to")
		if err != nil {
			code := fednode.ErrorCode(err)
			if code != fednode.EInvalidJSON && code != fednode.EUnknownField && code != fednode.EInvalidEncoding && code != fednode.EMissingField {
				t.Fatalf("unexpected code %q for %q", code, body)
			}
			return
		}
		if !strings.Contains(body, "{") || !utf8.ValidString(body) {
			t.Fatalf("accepted a body with no object or invalid UTF-8: %q", body)
		}
	})
}
