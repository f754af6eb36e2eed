package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/fednode/fednode"
)

// PublishedKeys is the caller's own published end-to-end keys, as
// GET /api/keys answers them.
type PublishedKeys struct {
	Document fednode.UserKeyDocument `json:"document"`
	Backup   *fednode.KeyBackup      `json:"backup"`
}

// PutKeys publishes the caller's end-to-end public keys (DER
// SubjectPublicKeyInfo) and, if backup is not nil, the passphrase-sealed
// backup of the private keys. Replacing keys is a key change for every
// contact.
func (c *Client) PutKeys(ctx context.Context, enc, sig []byte, backup *fednode.KeyBackup) (PublishedKeys, error) {
	in := struct {
		Enc    []byte             `json:"enc_key"`
		Sig    []byte             `json:"sig_key"`
		Backup *fednode.KeyBackup `json:"backup,omitempty"`
	}{enc, sig, backup}
	var out PublishedKeys
	err := c.do(ctx, "PUT", "/api/keys", in, &out)
	return out, err
}

// MyKeys returns the caller's published keys and backup; an *APIError
// with code not_found when there are none.
func (c *Client) MyKeys(ctx context.Context) (PublishedKeys, error) {
	var out PublishedKeys
	err := c.do(ctx, "GET", "/api/keys", nil, &out)
	return out, err
}

// DeleteKeys removes the caller's published keys and backup.
func (c *Client) DeleteKeys(ctx context.Context) error {
	return c.do(ctx, "DELETE", "/api/keys", nil, nil)
}

// UserKeys returns the key document of address (a local name or
// user@domain), fetched and checked by the caller's node. The client
// still checks it (e2e.VerifyDocument) and pins it.
func (c *Client) UserKeys(ctx context.Context, address string) (fednode.UserKeyDocument, error) {
	var out fednode.UserKeyDocument
	err := c.do(ctx, "GET", "/api/users/"+url.PathEscape(address)+"/keys", nil, &out)
	return out, err
}

// SendE2E sends an end-to-end encrypted message under the id the client
// chose and sealed it with (e2e.Seal); it returns the node's status.
func (c *Client) SendE2E(ctx context.Context, to, id string, e *fednode.E2E) (status string, err error) {
	var out struct{ ID, Status string }
	err = c.do(ctx, "POST", "/api/messages", map[string]any{"to": to, "id": id, "e2e": e}, &out)
	return out.Status, err
}

// IsNotFound reports whether err is the node's not_found answer.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Code == fednode.ENotFound || ae.Status == http.StatusNotFound)
}

// Me is the caller as GET /api/me describes it.
type Me struct {
	Username string `json:"username"`
	Address  string `json:"address"`
	Role     string `json:"role"`
}

// Me returns who the token belongs to.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var out Me
	err := c.do(ctx, "GET", "/api/me", nil, &out)
	return out, err
}
