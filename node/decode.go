package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/fednode/fednode"
)

// maxBody is the cap on any JSON request body, applied before parsing. The
// largest legitimate body is a message: 10,000 code points of up to 4 bytes,
// or 6 when JSON-escaped, plus tags and the address.
const maxBody = 96 << 10

// decodeBody reads one JSON object from r into dst (a pointer to a struct
// with json tags) and refuses, naming the field where there is one:
// a body over the cap, a content type other than JSON, anything that is not
// a single object, a member the struct does not declare (matched exactly,
// where encoding/json would match case-insensitively), a member given twice,
// a member of the wrong type, a member that is not valid UTF-8, any data
// after the object, and the absence of a required member.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, required ...string) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fednode.Errorf(fednode.EUnsupported, "the body must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fednode.Errorf(fednode.EBodyTooLarge, "the body must be at most %d bytes", maxBody)
		}
		return fmt.Errorf("read body: %w", err)
	}
	return decodeJSON(body, dst, required...)
}

// decodeJSON is decodeBody's parser, separate so that it can be fuzzed.
func decodeJSON(body []byte, dst any, required ...string) error {
	fields := jsonFields(dst)
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return fednode.Errorf(fednode.EInvalidJSON, "the body must be one JSON object")
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fednode.Errorf(fednode.EInvalidJSON, "the body is not well-formed JSON")
		}
		name := tok.(string) // object keys are always strings
		if _, ok := fields[name]; !ok {
			return fednode.FieldError(fednode.EUnknownField, name, "%q is not a field of this request", name)
		}
		if _, dup := members[name]; dup {
			return fednode.FieldError(fednode.EInvalidJSON, name, "%q is given twice", name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fednode.Errorf(fednode.EInvalidJSON, "the body is not well-formed JSON")
		}
		// encoding/json would quietly turn invalid UTF-8 into U+FFFD.
		if !utf8.Valid(raw) {
			return fednode.FieldError(fednode.EInvalidEncoding, name, "%q is not valid UTF-8", name)
		}
		members[name] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return fednode.Errorf(fednode.EInvalidJSON, "the body is not well-formed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fednode.Errorf(fednode.EInvalidJSON, "the body has data after the JSON object")
	}
	v := reflect.ValueOf(dst).Elem()
	for name, raw := range members {
		f := v.Field(fields[name])
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return fednode.FieldError(fednode.EInvalidJSON, name, "%q has the wrong type", name)
		}
	}
	for _, name := range required {
		if _, ok := members[name]; !ok {
			return fednode.FieldError(fednode.EMissingField, name, "%s is required", name)
		}
	}
	return nil
}

// jsonFields maps the json names of dst's fields to their indexes.
func jsonFields(dst any) map[string]int {
	t := reflect.TypeOf(dst).Elem()
	out := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = i
		}
	}
	return out
}
