package client

import (
	"context"
	"errors"
	"net/url"

	"github.com/fednode/fednode/internal/pow"
)

// Challenge is a proof-of-work challenge as GET /api/auth/challenge gives
// it (docs/API.md): find n in [0, MaxNumber] with
// hex(SHA-256(Salt + decimal n)) == Challenge.
type Challenge = pow.Challenge

// Challenge asks the node for a proof-of-work challenge.
func (c *Client) Challenge(ctx context.Context) (Challenge, error) {
	var ch Challenge
	err := c.do(ctx, "GET", "/api/auth/challenge", nil, &ch)
	return ch, err
}

// Solve solves a challenge and returns the solution as the node takes it
// in a request's "challenge" member.
func Solve(ctx context.Context, ch Challenge) (string, error) {
	s, err := pow.Solve(ctx, ch)
	if err != nil {
		return "", err
	}
	return pow.Encode(s), nil
}

// postSolving posts body to path. When the node answers that a proof of
// work is required (challenge_required), it gets a challenge, solves it
// and posts once more with the solution in body["challenge"]: a client
// never has to know that it was asked.
func (c *Client) postSolving(ctx context.Context, path string, body map[string]string, out any) error {
	err := c.do(ctx, "POST", path, body, out)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "challenge_required" {
		return err
	}
	ch, err := c.Challenge(ctx)
	if err != nil {
		return err
	}
	if body["challenge"], err = Solve(ctx, ch); err != nil {
		return err
	}
	return c.do(ctx, "POST", path, body, out)
}

// RegisterWithInvite creates an account with an invite code, as a node in
// REGISTRATION_MODE=invite requires.
func (c *Client) RegisterWithInvite(ctx context.Context, username, password, invite string) error {
	in := map[string]string{"username": username, "password": password}
	if invite != "" {
		in["invite"] = invite
	}
	return c.postSolving(ctx, "/api/auth/register", in, nil)
}

// Invite is an invite code as the admin API shows it.
type Invite struct {
	Code      string `json:"code"`
	State     string `json:"state"` // unused | used | expired
	CreatedBy string `json:"created_by"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at"`
	UsedBy    string `json:"used_by,omitempty"`
	UsedAt    string `json:"used_at,omitempty"`
}

// CreateInvites issues count invite codes valid for expiresIn (a duration
// such as "72h"; empty: the node's default, 7 days) (admin).
func (c *Client) CreateInvites(ctx context.Context, count int, expiresIn string) ([]Invite, error) {
	in := map[string]any{"count": count}
	if expiresIn != "" {
		in["expires_in"] = expiresIn
	}
	var out struct{ Invites []Invite }
	err := c.do(ctx, "POST", "/api/admin/invites", in, &out)
	return out.Invites, err
}

// Invites lists the invites, used, unused and expired (admin).
func (c *Client) Invites(ctx context.Context) ([]Invite, error) {
	var out struct{ Invites []Invite }
	err := c.do(ctx, "GET", "/api/admin/invites", nil, &out)
	return out.Invites, err
}

// RevokeInvite deletes an invite code so it can no longer be used (admin).
func (c *Client) RevokeInvite(ctx context.Context, code string) error {
	return c.do(ctx, "DELETE", "/api/admin/invites/"+url.PathEscape(code), nil, nil)
}
