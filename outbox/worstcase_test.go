package outbox

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/testkeys"
)

// TestWorstCaseBytesBoundsE2E: the largest end-to-end message the API
// takes seals into an envelope the inbox accepts (its ciphertext within
// the protocol's limit), and worstCaseBytes is not below its share of it,
// so a batch of them never passes the inbox's cap.
func TestWorstCaseBytesBoundsE2E(t *testing.T) {
	id := strings.Repeat("A", 43)
	e := &fednode.E2E{V: 1, SigKey: id, Nonce: make([]byte, 12), Ciphertext: bytes.Repeat([]byte{0xff}, fednode.E2EMaxCiphertext), Signature: make([]byte, 64)}
	for i := range fednode.E2EMaxKeys {
		e.Keys = append(e.Keys, fednode.E2EKey{KeyID: strings.Repeat(string(rune('A'+i)), 43), Wrapped: make([]byte, fednode.E2EWrappedLen)})
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := fednode.Message{ID: fednode.NewID(now), From: fednode.Address{User: strings.Repeat("a", 64), Domain: "a.example"},
		To: fednode.Address{User: strings.Repeat("b", 64), Domain: "b.example"}, CreatedAt: now, E2E: e}
	r := federation.Recipient{Domain: "b.example", EncKeyID: "b.example#enc-" + strings.Repeat("0", 32), EncKey: &testkeys.Key(0).PublicKey}
	var msgs []fednode.Message
	for range 3 {
		x := m
		x.ID = fednode.NewID(now)
		msgs = append(msgs, x)
	}
	env, err := federation.SealMessages("a.example", r, msgs)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(env)
	if _, err := federation.DecodeEnvelope(body); err != nil {
		t.Fatalf("the inbox would refuse the envelope: %v", err)
	}
	if bound := 1024 + 3*worstCaseBytes(m); len(body) > bound {
		t.Fatalf("3 messages make %d bytes; worstCaseBytes allows %d", len(body), bound)
	}
}
