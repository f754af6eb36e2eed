package inbox

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/strictjson"
)

// FuzzMessageOf feeds messageOf the plaintexts a peer can seal (decoded
// strictly, as federation.OpenMessage does), with e2e or without, under
// any id and created_at the envelope rules let through. It never panics;
// what it accepts passes the content rules or E2E.Validate with a
// created_at near its id's time; what it refuses is one of the
// per-message codes of PROTOCOL 2.4.
func FuzzMessageOf(f *testing.F) {
	now := time.Now().UTC()
	e2e := fednode.E2E{V: 1, SigKey: fednode.KeyID([]byte("s")), Nonce: make([]byte, 12), Ciphertext: make([]byte, 40), Signature: make([]byte, 64),
		Keys: []fednode.E2EKey{{KeyID: fednode.KeyID([]byte("k")), Wrapped: make([]byte, fednode.E2EWrappedLen)}}}
	payload, _ := json.Marshal(e2e)
	created := now.Format(federation.TimeFormat)
	for _, c := range []struct{ id, created, pt string }{
		{fednode.NewID(now), created, `{"content":"","tags":[],"e2e":` + string(payload) + `}`},
		{fednode.NewID(now.Add(-time.Hour)), created, `{"content":"","e2e":` + string(payload) + `}`},
		{fednode.NewID(now), created, `{"content":"x","e2e":` + string(payload) + `}`},
		{fednode.NewID(now), created, `{"content":"","tags":["a"],"e2e":{"v":1}}`},
		{fednode.NewID(now), created, `{"content":"hello","tags":["a","b"]}`},
		{fednode.NewID(now), created, `{"content":"\u0000","tags":["A B"]}`},
		{"not-an-id", "2026-01-01T00:00:00Z", `{"content":""}`},
	} {
		f.Add(c.id, c.created, []byte(c.pt))
	}
	from, to := fednode.Address{User: "alice", Domain: "a.example"}, fednode.Address{User: "bob", Domain: "b.example"}
	f.Fuzz(func(t *testing.T, id, createdAt string, raw []byte) {
		var pt federation.Plaintext
		if strictjson.Decode(raw, &pt) != nil {
			return // open_failed, before messageOf
		}
		c, err := time.Parse(time.RFC3339Nano, createdAt)
		if err != nil || !fednode.ValidID(id) {
			return // the envelope's rules refuse these
		}
		m := federation.EncryptedMessage{ID: id, From: from.String(), To: to.String(), CreatedAt: createdAt}
		msg, err := messageOf(m, from, to, pt)
		if err != nil {
			switch code := fednode.ErrorCode(err); code {
			case fednode.EInvalidE2E, fednode.EInvalidContent, fednode.EInvalidTags:
			default:
				t.Fatalf("refused with %q, not a per-message content code: %v", code, err)
			}
			return
		}
		if msg.E2E != nil {
			tid, _ := fednode.IDTime(id)
			switch {
			case msg.E2E.Validate() != nil:
				t.Fatalf("accepted an e2e that does not validate: %v", msg.E2E.Validate())
			case msg.Content != "" || len(msg.Tags) != 0:
				t.Fatalf("accepted an e2e message with content %q, tags %v", msg.Content, msg.Tags)
			case c.Sub(tid).Abs() > fednode.E2EIDWindow:
				t.Fatalf("accepted an e2e message created %v, its id made %v", c, tid)
			}
			return
		}
		if n, err := fednode.NormalizeContent(msg.Content); err != nil || n != msg.Content {
			t.Fatalf("accepted content %q that the rules change or refuse: %v", msg.Content, err)
		}
		if err := fednode.ValidateTags(msg.Tags); err != nil {
			t.Fatalf("accepted tags %v: %v", msg.Tags, err)
		}
	})
}
