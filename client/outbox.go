package client

import (
	"context"
	"net/url"
)

// DeadLetterSelection picks dead letters: set exactly one of MessageID,
// Peer or All.
type DeadLetterSelection struct {
	MessageID string `json:"message_id,omitempty"`
	Peer      string `json:"peer,omitempty"`
	All       bool   `json:"all,omitempty"`
}

// DeadLetterResult is what a redrive or a purge did.
type DeadLetterResult struct {
	Redriven   *int     `json:"redriven,omitempty"`
	Purged     *int     `json:"purged,omitempty"`
	MessageIDs []string `json:"message_ids"`
}

// RedriveDeadLetters puts the selected dead letters back in their peers'
// queues (admin).
func (c *Client) RedriveDeadLetters(ctx context.Context, sel DeadLetterSelection) (DeadLetterResult, error) {
	var out DeadLetterResult
	return out, c.do(ctx, "POST", "/api/admin/outbox/dead/redrive", sel, &out)
}

// PurgeDeadLetters forgets the selected dead letters (admin).
func (c *Client) PurgeDeadLetters(ctx context.Context, sel DeadLetterSelection) (DeadLetterResult, error) {
	var out DeadLetterResult
	return out, c.do(ctx, "POST", "/api/admin/outbox/dead/purge", sel, &out)
}

// RetryPeer serves the peer's queue now, resetting its backoff (admin).
func (c *Client) RetryPeer(ctx context.Context, peer string) error {
	return c.do(ctx, "POST", "/api/admin/outbox/peers/"+url.PathEscape(peer)+"/retry", nil, nil)
}
