package node

import (
	"testing"
	"time"

	"github.com/fednode/fednode"
)

func TestKeyDocsAnswerOnlyTheSameKeysWhileFresh(t *testing.T) {
	var c keyDocs
	now := time.Now()
	k := fednode.UserKeys{Enc: []byte("enc"), Sig: []byte("sig"), CreatedAt: now}
	doc := fednode.UserKeyDocument{Address: "bob@b.example", NodeKeyID: "b.example#sig-1"}
	if _, ok := c.get("bob@b.example", k, now); ok {
		t.Fatal("an empty cache answered")
	}
	c.put("bob@b.example", k, doc, now)
	if d, ok := c.get("bob@b.example", k, now.Add(time.Minute)); !ok || d.NodeKeyID != doc.NodeKeyID {
		t.Fatalf("a fresh document: %+v, %v", d, ok)
	}
	later := k
	later.CreatedAt = now.Add(time.Second) // the same keys published again later
	other := k
	other.Sig = []byte("sig2")
	for name, miss := range map[string]func() bool{
		"other keys":             func() bool { _, ok := c.get("bob@b.example", other, now); return !ok },
		"another created_at":     func() bool { _, ok := c.get("bob@b.example", later, now); return !ok },
		"another address":        func() bool { _, ok := c.get("eve@b.example", k, now); return !ok },
		"after the TTL":          func() bool { _, ok := c.get("bob@b.example", k, now.Add(keyDocTTL)); return !ok },
		"a clock that went back": func() bool { _, ok := c.get("bob@b.example", k, now.Add(-time.Second)); return !ok },
	} {
		if !miss() {
			t.Errorf("%s: answered from the cache", name)
		}
	}
	c.clear()
	if _, ok := c.get("bob@b.example", k, now); ok {
		t.Fatal("answered after clear")
	}
}
