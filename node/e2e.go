package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/e2e"
)

// sendRequest is the body of POST /api/messages: content and tags, or an
// end-to-end encrypted body (e2e) with the id the client chose for it,
// which its AAD and signature bind.
type sendRequest struct {
	To      string       `json:"to" strictjson:"required"`
	Content *string      `json:"content"`
	Tags    *[]string    `json:"tags"`
	ID      *string      `json:"id"`
	E2E     *fednode.E2E `json:"e2e"`
}

// decodeSend reads the body of POST /api/messages; a member of e2e that
// does not decode (say a bad base64) is invalid_e2e.
func decodeSend(w http.ResponseWriter, r *http.Request) (sendRequest, error) {
	var q sendRequest
	if err := decodeBody(w, r, &q); err != nil {
		return sendRequest{}, reclassify(err, fednode.EInvalidE2E, "e2e")
	}
	return q, nil
}

// plain checks a request without e2e as the endpoint always has: content
// is required, and id is not a member it takes.
func (q *sendRequest) plain() error {
	switch {
	case q.ID != nil:
		return fednode.FieldError(fednode.EUnknownField, "id", "%q is not a field of this request", "id")
	case q.Content == nil:
		return fednode.FieldError(fednode.EMissingField, "content", "%s is required", "content")
	}
	return nil
}

func (q *sendRequest) tags() []string {
	if q.Tags == nil {
		return nil
	}
	return *q.Tags
}

// checkE2E checks a request with e2e as far as it can without the store:
// no content or tags, an id made now, the payload's structure and the
// recipient's address, which it returns.
func (q *sendRequest) checkE2E(now time.Time, domain string) (fednode.Address, error) {
	switch {
	case q.Content != nil:
		return fednode.Address{}, fednode.FieldError(fednode.EInvalidE2E, "content", "an end-to-end encrypted message has no content: it is inside e2e")
	case q.Tags != nil:
		return fednode.Address{}, fednode.FieldError(fednode.EInvalidE2E, "tags", "an end-to-end encrypted message has no tags: they are inside e2e")
	case q.ID == nil:
		return fednode.Address{}, fednode.FieldError(fednode.EInvalidE2E, "id", "id is required with e2e")
	}
	if err := fednode.CheckE2EID(*q.ID, now); err != nil {
		return fednode.Address{}, err
	}
	if err := q.E2E.Validate(); err != nil {
		return fednode.Address{}, err
	}
	addr, err := fednode.ParseAddress(q.To, domain)
	if err != nil {
		return fednode.Address{}, fednode.FieldError(fednode.ErrorCode(err), "to", "%s", fednode.ErrorMessage(err))
	}
	return addr, nil
}

// sendE2E validates and stores an end-to-end encrypted message from a
// local user. The node cannot open it: it checks the id's form and age,
// the payload's structure, and that it is signed with the sender's
// currently published signing key (the claimed id, and the ECDSA signature
// over fednode.E2ESignedBytes with the message's own id, from and to), so
// that no one can store under a user's name a message that user's key did
// not sign, and a client can tell a stale or foreign key from an attack.
func (m *messaging) sendE2E(ctx context.Context, from string, q sendRequest) (fednode.Message, error) {
	now := m.now().UTC()
	addr, err := q.checkE2E(now, m.domain)
	if err != nil {
		return fednode.Message{}, err
	}
	keys, err := m.store.UserKeys(ctx, from)
	if err != nil && !errors.Is(err, fednode.ErrNotFound) {
		return fednode.Message{}, fmt.Errorf("send: keys of %s: %w", from, err)
	}
	if err != nil || keys.SigKeyID() != q.E2E.SigKey {
		return fednode.Message{}, fednode.FieldError(fednode.EInvalidE2E, "e2e.sig_key", "sig_key is not your published signing key")
	}
	sender := fednode.Address{User: from, Domain: m.domain}
	if err := verifyE2ESignature(*q.ID, sender, addr, q.E2E, keys.Sig); err != nil {
		return fednode.Message{}, err
	}
	return m.commit(ctx, fednode.Message{
		ID:        *q.ID,
		From:      sender,
		To:        addr,
		CreatedAt: now,
		Status:    fednode.StatusDelivered,
		E2E:       q.E2E,
	})
}

// verifyE2ESignature checks e's signature with the published signing key
// sig (DER SubjectPublicKeyInfo, checked when it was published) over the
// message's own id, from and to (PROTOCOL §5.4).
func verifyE2ESignature(id string, from, to fednode.Address, e *fednode.E2E, sig []byte) error {
	k, err := x509.ParsePKIXPublicKey(sig)
	pub, ok := k.(*ecdsa.PublicKey)
	if err != nil || !ok {
		return fmt.Errorf("send: the published signing key of %s is not an ECDSA key: %v", from, err) // checked at PUT: the store is damaged
	}
	if !e2e.VerifySignature(id, from, to, e, pub) {
		return fednode.FieldError(fednode.EInvalidE2E, "e2e.signature", "the signature does not verify with your published signing key over this message's id, from and to")
	}
	return nil
}
