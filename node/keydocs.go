package node

import (
	"sync"
	"time"

	"github.com/fednode/fednode"
)

// keyDocs keeps the user key documents this node signed for a while, so
// that reading a user's keys, locally or by a peer, does not cost a
// signature (a Vault round trip with Transit) each time. An entry is named
// by everything the document says, so new keys are never answered with an
// old document; it is dropped after keyDocTTL, far inside a signing key's
// rotation overlap, and at once when this node rotates its keys.
type keyDocs struct {
	mu   sync.Mutex
	docs map[keyDocName]keyDoc
}

type keyDocName struct{ address, enc, sig string }

type keyDoc struct {
	created time.Time // the keys'
	doc     fednode.UserKeyDocument
	at      time.Time // when it was signed
}

// Bounds of the cache of signed user key documents.
const (
	keyDocTTL  = 5 * time.Minute
	maxKeyDocs = 4096
)

func (c *keyDocs) get(address string, k fednode.UserKeys, now time.Time) (fednode.UserKeyDocument, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.docs[keyDocName{address, k.EncKeyID(), k.SigKeyID()}]
	if !ok || !e.created.Equal(k.CreatedAt) || now.Sub(e.at) >= keyDocTTL || now.Before(e.at) {
		return fednode.UserKeyDocument{}, false
	}
	return e.doc, true
}

func (c *keyDocs) put(address string, k fednode.UserKeys, doc fednode.UserKeyDocument, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docs == nil || len(c.docs) >= maxKeyDocs {
		c.docs = map[keyDocName]keyDoc{} // a full cache starts over: signing again is correct, only slower
	}
	c.docs[keyDocName{address, k.EncKeyID(), k.SigKeyID()}] = keyDoc{created: k.CreatedAt, doc: doc, at: now}
}

// clear forgets every document (the node's signing key changed).
func (c *keyDocs) clear() {
	c.mu.Lock()
	c.docs = nil
	c.mu.Unlock()
}
