// Package strictjson decodes JSON from users and peers strictly, at every
// depth: one decoder for the REST API's bodies and for everything a peer
// node sends (envelopes, message plaintexts, node documents, inbox
// answers), so that no two parsers of the same bytes can disagree.
//
// encoding/json alone is lenient in ways an attacker can use: it matches
// member names case-insensitively ("From_node" fills from_node), lets the
// last of two equal members win, ignores unknown members unless told, and
// quietly turns invalid UTF-8 and lone surrogate escapes into U+FFFD. Decode
// refuses all of these, naming the offending member by its path
// ("keys[0].enc_key_id"), and only then lets encoding/json fill the values.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fednode/fednode"
)

// Decode parses body, which must be exactly one JSON object and nothing
// after it, into dst, a pointer to a struct. At every depth it refuses,
// with an *fednode.Error whose Field is the member's path:
//   - a member whose name is not exactly the json name of a field of the
//     struct it fills (EUnknownField);
//   - a member given twice, in a struct, a map or any object (EInvalidJSON);
//   - a member that is not valid UTF-8 or holds a lone surrogate escape
//     (EInvalidEncoding);
//   - a value of the wrong type (EInvalidJSON);
//   - the absence of a field tagged `json:"name" strictjson:"required"` (EMissingField).
//
// null is accepted where encoding/json accepts it and leaves the zero value
// (a required member given as null is present). Only exported fields named
// by a json tag or by their Go name take part; embedded structs are not
// flattened.
func Decode(body []byte, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		panic("strictjson: Decode needs a non-nil pointer to a struct")
	}
	// The fast path: well-formed JSON that passes one walk over its bytes
	// (exact names, no repeats, required members, valid text) is decoded
	// once by encoding/json. Anything else, or a type error, goes to the
	// slow path, which decodes member by member and names what is wrong.
	if firstByte(body) == '{' && utf8.Valid(body) && !hasLoneSurrogate(body) && acceptable(body, rv.Elem().Type()) {
		if json.Unmarshal(body, dst) == nil {
			return nil
		}
		rv.Elem().SetZero()
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return fednode.Errorf(fednode.EInvalidJSON, "the body is not well-formed JSON")
	}
	if firstByte(raw) != '{' {
		return fednode.Errorf(fednode.EInvalidJSON, "the body must be one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fednode.Errorf(fednode.EInvalidJSON, "the body has data after the JSON object")
	}
	if err := decodeValue(raw, rv.Elem(), ""); err != nil {
		return err
	}
	// Values were checked one by one, naming each; what is left to check
	// is member names, which the tokenizer has already made valid.
	if !utf8.Valid(raw) || hasLoneSurrogate(raw) {
		return fednode.Errorf(fednode.EInvalidEncoding, "a member name is not valid UTF-8")
	}
	return nil
}

// decodeValue fills v (addressable) from raw, a syntactically valid value.
func decodeValue(raw []byte, v reflect.Value, path string) error {
	t := v.Type()
	if !needsWalk(t) {
		if err := checkEncoding(raw, path); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			return wrongType(path)
		}
		return nil
	}
	if bytes.Equal(raw, []byte("null")) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			v.SetZero()
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return decodeValue(raw, v.Elem(), path)
	case reflect.Struct:
		return decodeObject(raw, path, func(name string) (reflect.Value, bool) {
			i, ok := fieldsOf(t).index[name]
			if !ok {
				return reflect.Value{}, false
			}
			return v.Field(i), true
		}, func(seen map[string]bool) error {
			for _, name := range fieldsOf(t).required {
				if !seen[name] {
					p := join(path, name)
					return fednode.FieldError(fednode.EMissingField, p, "%s is required", p)
				}
			}
			return nil
		})
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic("strictjson: only maps with string keys are supported")
		}
		m := reflect.MakeMap(t)
		err := decodeObject(raw, path, func(name string) (reflect.Value, bool) {
			return reflect.New(t.Elem()).Elem(), true
		}, nil, func(name string, elem reflect.Value) { m.SetMapIndex(reflect.ValueOf(name).Convert(t.Key()), elem) })
		if err == nil {
			v.Set(m)
		}
		return err
	case reflect.Slice:
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return wrongType(path)
		}
		s := reflect.MakeSlice(t, len(elems), len(elems))
		for i, e := range elems {
			if err := decodeValue(e, s.Index(i), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Interface:
		if err := checkEncoding(raw, path); err != nil {
			return err
		}
		if err := checkNoDuplicates(raw, path); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			return wrongType(path)
		}
		return nil
	}
	panic("strictjson: unsupported type " + t.String())
}

// decodeObject walks the members of the object raw: member finds the value
// a name fills (false: unknown), after checks the names seen, and store (for
// maps) keeps each decoded value.
func decodeObject(raw []byte, path string, member func(string) (reflect.Value, bool), after func(map[string]bool) error, store ...func(string, reflect.Value)) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return wrongType(path)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fednode.Errorf(fednode.EInvalidJSON, "the body is not well-formed JSON")
		}
		name := tok.(string) // object keys are always strings
		p := join(path, name)
		f, ok := member(name)
		if !ok {
			return fednode.FieldError(fednode.EUnknownField, p, "%q is not a field of this request", p)
		}
		if seen[name] {
			return fednode.FieldError(fednode.EInvalidJSON, p, "%q is given twice", p)
		}
		seen[name] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return fednode.Errorf(fednode.EInvalidJSON, "the body is not well-formed JSON")
		}
		if err := decodeValue(val, f, p); err != nil {
			return err
		}
		for _, s := range store {
			s(name, f)
		}
	}
	if after != nil {
		return after(seen)
	}
	return nil
}

// checkNoDuplicates refuses an object, at any depth of raw, with a member
// given twice: for values decoded into interfaces, which encoding/json fills
// with "last one wins".
func checkNoDuplicates(raw []byte, path string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next token of an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return wrongType(path)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name := tok.(string)
			if top.seen[name] {
				return fednode.FieldError(fednode.EInvalidJSON, path, "%q is given twice in %q", name, path)
			}
			top.seen[name] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// checkEncoding refuses a leaf value that is not valid UTF-8 or holds a
// lone surrogate escape. Objects and arrays are checked member by member,
// so the error names the innermost member.
func checkEncoding(raw []byte, path string) error {
	if !utf8.Valid(raw) || hasLoneSurrogate(raw) {
		return fednode.FieldError(fednode.EInvalidEncoding, path, "%q is not valid UTF-8", path)
	}
	return nil
}

func wrongType(path string) error {
	if path == "" {
		return fednode.Errorf(fednode.EInvalidJSON, "the body must be one JSON object")
	}
	return fednode.FieldError(fednode.EInvalidJSON, path, "%q has the wrong type", path)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func firstByte(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// needsWalk reports whether values of t can hold an object, whose members
// Decode must check itself; anything else encoding/json decodes alone.
// Types that decode themselves (time.Time) are leaves.
func needsWalk(t reflect.Type) bool {
	if t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return false
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return needsWalk(t.Elem())
	case reflect.Struct, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

// fields is a struct type's json members.
type fields struct {
	index    map[string]int
	required []string
}

var fieldCache sync.Map // reflect.Type -> *fields

func fieldsOf(t reflect.Type) *fields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*fields)
	}
	f := &fields{index: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f.index[name] = i
		if sf.Tag.Get("strictjson") == "required" {
			f.required = append(f.required, name)
		}
	}
	fieldCache.Store(t, f)
	return f
}

// hasLoneSurrogate reports whether raw, valid JSON, has a \u escape of a
// UTF-16 surrogate that is not half of a high-low pair; encoding/json
// would decode it as U+FFFD.
func hasLoneSurrogate(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character; a backslash escapes exactly one
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw[i+1:])
		if !ok {
			return true // not valid JSON; cannot happen after the decoder
		}
		i += 4
		switch {
		case 0xDC00 <= r && r <= 0xDFFF:
			return true
		case 0xD800 <= r && r <= 0xDBFF:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return true
			}
			lo, ok := hex4(raw[i+3:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(n), err == nil
}

// acceptable reports whether raw, a syntactically valid object, has at
// every depth only exactly named, unrepeated members and every required
// one, for a value of type t. It never decides a refusal: false only sends
// Decode to the slow path (as does a member name with an escape in it).
// It reads the bytes in place and allocates almost nothing.
func acceptable(raw []byte, t reflect.Type) bool {
	sc := scanner{b: raw}
	return sc.value(t) && sc.end()
}

// scanner walks JSON for acceptable. It need not be well-formed: on bad
// bytes the scanner stops (false) or goes on harmlessly, and encoding/json,
// which decides only after it, refuses what is not JSON.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *scanner) end() bool { s.ws(); return s.i == len(s.b) }

// peek returns the next significant byte.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// str consumes a string and returns its raw contents; escaped reports a
// backslash in it.
func (s *scanner) str() (raw []byte, escaped bool) {
	start := s.i + 1
	for s.i = start; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i++
		case '"':
			s.i++
			return s.b[start : s.i-1], escaped
		}
	}
	return nil, true
}

// skip consumes any value; objects in it must not repeat a name.
func (s *scanner) skip() bool {
	switch s.peek() {
	case '{':
		return s.object(true, func(string) (reflect.Type, bool) { return nil, true })
	case '[':
		return s.array(nil)
	case '"':
		s.str()
		return true
	}
	for s.i < len(s.b) && strings.IndexByte(",]} \t\r\n", s.b[s.i]) < 0 {
		s.i++
	}
	return true
}

// value consumes a value for type t (nil: any).
func (s *scanner) value(t reflect.Type) bool {
	if t == nil || !needsWalk(t) {
		return s.skip()
	}
	c := s.peek()
	if c == 'n' { // null
		return s.skip()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return s.value(t.Elem())
	case reflect.Struct:
		if c != '{' {
			return false
		}
		f := fieldsOf(t)
		seen := make([]bool, t.NumField())
		ok := s.object(false, func(name string) (reflect.Type, bool) {
			i, ok := f.index[name]
			if !ok || seen[i] {
				return nil, false
			}
			seen[i] = true
			return t.Field(i).Type, true
		})
		if !ok {
			return false
		}
		for _, name := range f.required {
			if !seen[f.index[name]] {
				return false
			}
		}
		return true
	case reflect.Map:
		if c != '{' {
			return false
		}
		return s.object(true, func(string) (reflect.Type, bool) { return t.Elem(), true })
	case reflect.Slice, reflect.Array:
		if c != '[' {
			return false
		}
		return s.array(t.Elem())
	}
	return false // interfaces: the slow path checks them
}

// object consumes an object; member says what type a name's value has, or
// refuses the name. Names may not repeat: object checks that itself when
// dedupe is set, and member does for a struct.
func (s *scanner) object(dedupe bool, member func(string) (reflect.Type, bool)) bool {
	s.i++ // '{'
	var names map[string]bool
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		raw, escaped := s.str()
		if escaped {
			return false
		}
		if dedupe {
			if names == nil {
				names = map[string]bool{}
			}
			if names[string(raw)] {
				return false
			}
			names[string(raw)] = true
		}
		t, ok := member(string(raw))
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !s.value(t) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array consumes an array of elem values.
func (s *scanner) array(elem reflect.Type) bool {
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(elem) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}
