package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/fednode/fednode"
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

// sendE2E validates and stores an end-to-end encrypted message from a
// local user. The node cannot open it: it checks the id's form and age,
// the payload's structure, and that it is signed (as it claims) with the
// sender's currently published signing key, so that a client can tell a
// stale or foreign key from an attack.
func (m *messaging) sendE2E(ctx context.Context, from string, q sendRequest) (fednode.Message, error) {
	switch {
	case q.Content != nil:
		return fednode.Message{}, fednode.FieldError(fednode.EInvalidE2E, "content", "an end-to-end encrypted message has no content: it is inside e2e")
	case q.Tags != nil:
		return fednode.Message{}, fednode.FieldError(fednode.EInvalidE2E, "tags", "an end-to-end encrypted message has no tags: they are inside e2e")
	case q.ID == nil:
		return fednode.Message{}, fednode.FieldError(fednode.EInvalidE2E, "id", "id is required with e2e")
	}
	now := m.now().UTC()
	if err := fednode.CheckE2EID(*q.ID, now); err != nil {
		return fednode.Message{}, err
	}
	if err := q.E2E.Validate(); err != nil {
		return fednode.Message{}, err
	}
	addr, err := fednode.ParseAddress(q.To, m.domain)
	if err != nil {
		return fednode.Message{}, fednode.FieldError(fednode.ErrorCode(err), "to", "%s", fednode.ErrorMessage(err))
	}
	keys, err := m.store.UserKeys(ctx, from)
	if err != nil && !errors.Is(err, fednode.ErrNotFound) {
		return fednode.Message{}, fmt.Errorf("send: keys of %s: %w", from, err)
	}
	if err != nil || keys.SigKeyID() != q.E2E.SigKey {
		return fednode.Message{}, fednode.FieldError(fednode.EInvalidE2E, "e2e.sig_key", "sig_key is not your published signing key")
	}
	return m.commit(ctx, fednode.Message{
		ID:        *q.ID,
		From:      fednode.Address{User: from, Domain: m.domain},
		To:        addr,
		CreatedAt: now,
		Status:    fednode.StatusDelivered,
		E2E:       q.E2E,
	})
}
