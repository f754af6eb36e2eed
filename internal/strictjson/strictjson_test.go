package strictjson

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fednode/fednode"
)

type sample struct {
	To      string   `json:"to" strictjson:"required"`
	Content string   `json:"content"`
	Tags    []string `json:"tags"`
}

func TestDecodeFlat(t *testing.T) {
	tests := []struct {
		name, body, code, field string
	}{
		{"ok", `{"to":"bob","content":"hi","tags":["a"]}`, "", ""},
		{"ok with spaces and null tags", ` { "to" : "bob" , "tags" : null } `, "", ""},
		{"empty", ``, fednode.EInvalidJSON, ""},
		{"array", `[]`, fednode.EInvalidJSON, ""},
		{"string", `"x"`, fednode.EInvalidJSON, ""},
		{"null", `null`, fednode.EInvalidJSON, ""},
		{"unknown field", `{"to":"bob","admin":true}`, fednode.EUnknownField, "admin"},
		{"case-folded field", `{"To":"bob"}`, fednode.EUnknownField, "To"},
		{"case-folded after the real one", `{"to":"bob","TO":"eve"}`, fednode.EUnknownField, "TO"},
		{"duplicate field", `{"to":"bob","to":"eve"}`, fednode.EInvalidJSON, "to"},
		{"wrong type", `{"to":1}`, fednode.EInvalidJSON, "to"},
		{"wrong element type", `{"tags":[1]}`, fednode.EInvalidJSON, "tags"},
		{"trailing object", `{"to":"bob"}{"to":"eve"}`, fednode.EInvalidJSON, ""},
		{"trailing garbage", `{"to":"bob"} x`, fednode.EInvalidJSON, ""},
		{"unterminated", `{"to":"bob"`, fednode.EInvalidJSON, ""},
		{"bad value", `{"to":}`, fednode.EInvalidJSON, ""},
		{"missing required", `{"content":"x"}`, fednode.EMissingField, "to"},
		{"invalid UTF-8", "{\"to\":\"a\xffb\"}", fednode.EInvalidEncoding, "to"},
		{"lone high surrogate", `{"to":"bob","content":"a\ud800b"}`, fednode.EInvalidEncoding, "content"},
		{"lone low surrogate", `{"to":"bob","content":"\udc00"}`, fednode.EInvalidEncoding, "content"},
		{"high surrogate at the end", `{"to":"bob","content":"\ud800"}`, fednode.EInvalidEncoding, "content"},
		{"reversed pair", `{"to":"bob","content":"\udc00\ud800"}`, fednode.EInvalidEncoding, "content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sample
			err := Decode([]byte(tt.body), &s)
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

func TestDecodeEscapes(t *testing.T) {
	var s sample
	if err := Decode([]byte(`{"to":"bob","content":"\ud83d\ude00 \\ud800 \u00e9"}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Content != "😀 \\ud800 é" {
		t.Fatalf("content %q", s.Content)
	}
}

type inner struct {
	ID   string     `json:"id" strictjson:"required"`
	At   time.Time  `json:"at"`
	Opt  *time.Time `json:"opt,omitempty"`
	Data []byte     `json:"data"`
}

type outer struct {
	Version int               `json:"version" strictjson:"required"`
	Items   []inner           `json:"items" strictjson:"required"`
	One     *inner            `json:"one"`
	Labels  map[string]string `json:"labels"`
	Any     any               `json:"any"`
}

// TestDecodeNested: the same rules at every depth, named by path.
func TestDecodeNested(t *testing.T) {
	good := `{"version":1,"items":[{"id":"a","at":"2026-01-01T00:00:00Z","data":"AQI="},{"id":"b"}],"one":{"id":"c"},"labels":{"x":"y"},"any":{"k":[1,{"j":2}]}}`
	var o outer
	if err := Decode([]byte(good), &o); err != nil {
		t.Fatal(err)
	}
	var want outer
	json.Unmarshal([]byte(good), &want)
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("decoded %+v, encoding/json %+v", o, want)
	}
	tests := []struct {
		name, body, code, field string
	}{
		{"nested unknown", `{"version":1,"items":[{"id":"a","x":1}]}`, fednode.EUnknownField, "items[0].x"},
		{"nested case-folded", `{"version":1,"items":[{"id":"a"},{"ID":"b"}]}`, fednode.EUnknownField, "items[1].ID"},
		{"nested duplicate", `{"version":1,"items":[{"id":"a","id":"b"}]}`, fednode.EInvalidJSON, "items[0].id"},
		{"nested missing", `{"version":1,"items":[{"at":"2026-01-01T00:00:00Z"}]}`, fednode.EMissingField, "items[0].id"},
		{"nested wrong type", `{"version":1,"items":[{"id":7}]}`, fednode.EInvalidJSON, "items[0].id"},
		{"nested bad time", `{"version":1,"items":[{"id":"a","at":"yesterday"}]}`, fednode.EInvalidJSON, "items[0].at"},
		{"object for an array", `{"version":1,"items":{"id":"a"}}`, fednode.EInvalidJSON, "items"},
		{"array for an object", `{"version":1,"items":[],"one":[]}`, fednode.EInvalidJSON, "one"},
		{"pointer unknown", `{"version":1,"items":[],"one":{"id":"a","Id":"b"}}`, fednode.EUnknownField, "one.Id"},
		{"map duplicate", `{"version":1,"items":[],"labels":{"x":"1","x":"2"}}`, fednode.EInvalidJSON, "labels.x"},
		{"any duplicate deep", `{"version":1,"items":[],"any":[{"a":{"b":1,"b":2}}]}`, fednode.EInvalidJSON, "any"},
		{"nested invalid UTF-8", "{\"version\":1,\"items\":[{\"id\":\"\xc3\"}]}", fednode.EInvalidEncoding, "items[0].id"},
		{"missing top level", `{"items":[]}`, fednode.EMissingField, "version"},
		{"map key invalid UTF-8", "{\"version\":1,\"items\":[],\"labels\":{\"a\xff\":\"1\"}}", fednode.EInvalidEncoding, ""},
		{"map key lone surrogate", `{"version":1,"items":[],"labels":{"a\udc00":"1"}}`, fednode.EInvalidEncoding, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			err := Decode([]byte(tt.body), &o)
			e, ok := err.(*fednode.Error)
			if !ok || e.Code != tt.code || e.Field != tt.field {
				t.Fatalf("got %#v, want code %s field %q", err, tt.code, tt.field)
			}
		})
	}
	// null where encoding/json allows it.
	var n outer
	if err := Decode([]byte(`{"version":1,"items":null,"one":null,"labels":null,"any":null}`), &n); err != nil || n.Items != nil || n.One != nil {
		t.Fatalf("%+v %v", n, err)
	}
}

// FuzzDecode: any body is refused with one of the four codes or decodes to
// what encoding/json decodes from it, and then it had exactly-cased members
// only, no duplicates, valid UTF-8; it never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"to":"bob","content":"hi","tags":["a"]}`, `{}`, `{"to":"a","to":"b"}`, `[`, `{"tags":[1,2]}`, `{"x":{"y":[]}}`,
		"{\"to\":\"\\u0000\"}", `{"to":"\ud800"}`, `{"version":1,"items":[{"id":"a","at":"2026-01-01T00:00:00Z"}],"any":{"a":1}}`,
		`{"version":1,"items":[],"labels":{"a":"b"},"one":{"id":"x","opt":null}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, dst := range []any{&sample{}, &outer{}} {
			err := Decode([]byte(body), dst)
			if err != nil {
				switch code := fednode.ErrorCode(err); code {
				case fednode.EInvalidJSON, fednode.EUnknownField, fednode.EInvalidEncoding, fednode.EMissingField:
				default:
					t.Fatalf("unexpected code %q for %q", code, body)
				}
				continue
			}
			if !strings.Contains(body, "{") || !utf8.ValidString(body) || hasLoneSurrogate([]byte(body)) {
				t.Fatalf("accepted a body with no object or invalid text: %q", body)
			}
			lenient := reflect.New(reflect.TypeOf(dst).Elem()).Interface()
			if err := json.Unmarshal([]byte(body), lenient); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
			if !reflect.DeepEqual(dst, lenient) {
				t.Fatalf("%q: decoded %+v, encoding/json %+v", body, dst, lenient)
			}
		}
	})
}

// BenchmarkDecode: a send request's body, strictly and with encoding/json.
func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"to":"bob@b.example","content":"a benchmark message of ordinary length","tags":["bench"]}`)
	b.Run("strict", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var s sample
			if err := Decode(body, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var s sample
			if err := json.Unmarshal(body, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
