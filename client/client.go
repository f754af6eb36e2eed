// Package client is a Go client for a fednode node's public HTTP API. It is
// what cmd/fedctl uses, and the simplest reference for the API's shapes.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fednode/fednode"
	"github.com/gorilla/websocket"
)

// Client talks to one node as one user.
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:8080
	Token   string       // bearer token from Login; empty before
	HTTP    *http.Client // nil means a client with a 30 s timeout
}

// APIError is an error answer from the node.
type APIError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
	if e.Field != "" {
		s += " [field " + e.Field + "]"
	}
	return s
}

// Message is a message as the API returns it.
type Message struct {
	ID        string   `json:"id"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Content   string   `json:"content"`
	Tags      []string `json:"tags"`
	CreatedAt string   `json:"created_at"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason,omitempty"`
	Cursor    string   `json:"cursor,omitempty"`
	// ReasonCode is the stable code of Reason.
	ReasonCode string `json:"reason_code,omitempty"`
	// Event is "status" on a socket frame that says a remote message's
	// status changed (ID, Status, Reason, ReasonCode); empty on a message.
	Event string `json:"event,omitempty"`
	// Delivery is the state of a queued remote message, for its sender.
	Delivery *Delivery `json:"delivery,omitempty"`
	// E2E is the end-to-end encrypted body (client/e2e.go); Content and
	// Tags are then empty.
	E2E *fednode.E2E `json:"e2e,omitempty"`
}

// Delivery is the state of a queued remote message.
type Delivery struct {
	Attempts      int    `json:"attempts"`
	LastError     string `json:"last_error,omitempty"`
	LastErrorCode string `json:"last_error_code,omitempty"`
	NextAttemptAt string `json:"next_attempt_at,omitempty"`
}

// Page is one page of GET /api/messages.
type Page struct {
	Messages []Message `json:"messages"`
	Next     string    `json:"next"`
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func decodeError(status int, raw []byte) error {
	var e struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" {
		return &APIError{Status: status, Code: "http_error", Message: strings.TrimSpace(string(raw))}
	}
	return &APIError{Status: status, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field}
}

// Register creates an account, solving a proof-of-work challenge if the
// node asks for one.
func (c *Client) Register(ctx context.Context, username, password string) error {
	return c.RegisterWithInvite(ctx, username, password, "")
}

// Login opens a session and keeps its token in c.Token, solving a
// proof-of-work challenge if the node asks for one.
func (c *Client) Login(ctx context.Context, username, password string) (expiresAt string, err error) {
	var out struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := c.postSolving(ctx, "/api/auth/login", map[string]string{"username": username, "password": password}, &out); err != nil {
		return "", err
	}
	c.Token = out.Token
	return out.ExpiresAt, nil
}

// Logout revokes the current session.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, "POST", "/api/auth/logout", nil, nil)
}

// Send sends a message and returns its id and status.
func (c *Client) Send(ctx context.Context, to, content string, tags []string) (id, status string, err error) {
	var out struct{ ID, Status string }
	in := map[string]any{"to": to, "content": content}
	if len(tags) > 0 {
		in["tags"] = tags
	}
	err = c.do(ctx, "POST", "/api/messages", in, &out)
	return out.ID, out.Status, err
}

// Messages returns the page after cursor (empty for the beginning).
func (c *Client) Messages(ctx context.Context, after string, limit int) (Page, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var p Page
	err := c.do(ctx, "GET", "/api/messages?"+q.Encode(), nil, &p)
	return p, err
}

// Message returns one message by id.
func (c *Client) Message(ctx context.Context, id string) (Message, error) {
	var m Message
	err := c.do(ctx, "GET", "/api/messages/"+url.PathEscape(id), nil, &m)
	return m, err
}

// ErrUnauthorized ends Tail: reconnecting cannot help a revoked token.
var ErrUnauthorized = errors.New("client: the token was refused")

// Tail follows the live socket from cursor after (empty: from now), calling
// fn for each message in order. When the connection drops it reconnects with
// exponential backoff and jitter (0.5 s doubling to 30 s), resuming from the
// last cursor it delivered, so nothing is missed or repeated. It returns when
// ctx ends, when fn returns an error, or when the node refuses the token.
// onState, if not nil, hears "connected" and "disconnected: <why>".
func (c *Client) Tail(ctx context.Context, after string, fn func(Message) error, onState func(string)) error {
	if onState == nil {
		onState = func(string) {}
	}
	wsURL := "ws" + strings.TrimPrefix(strings.TrimRight(c.BaseURL, "/"), "http") + "/api/ws"
	backoff := 500 * time.Millisecond
	for {
		u := wsURL
		if after != "" {
			u += "?after=" + url.QueryEscape(after)
		}
		h := http.Header{"Authorization": {"Bearer " + c.Token}}
		conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u, h)
		if err == nil {
			onState("connected")
			backoff = 500 * time.Millisecond
			err = c.read(ctx, conn, &after, fn)
			conn.Close()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var fnErr fnError
			if errors.As(err, &fnErr) {
				return fnErr.err
			}
		} else if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return ErrUnauthorized
		}
		if websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			return fmt.Errorf("%w: %v", ErrUnauthorized, err)
		}
		onState("disconnected: " + err.Error())
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func (c *Client) read(ctx context.Context, conn *websocket.Conn, after *string, fn func(Message) error) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		var m Message
		if err := conn.ReadJSON(&m); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return fnError{err}
		}
		if m.Cursor != "" {
			*after = m.Cursor
		}
	}
}

// Policy is the federation policy (admin).
type Policy struct {
	Mode      string   `json:"mode"`
	Allowlist []string `json:"allowlist"`
	Blocklist []string `json:"blocklist"`
}

// FederationPolicy returns the policy in force (admin).
func (c *Client) FederationPolicy(ctx context.Context) (Policy, error) {
	var p Policy
	err := c.do(ctx, "GET", "/api/admin/federation", nil, &p)
	return p, err
}

// SetFederationPolicy replaces the policy (admin); reset restores the
// configuration's.
func (c *Client) SetFederationPolicy(ctx context.Context, p Policy, reset bool) (Policy, error) {
	var out Policy
	if reset {
		return out, c.do(ctx, "DELETE", "/api/admin/federation", nil, &out)
	}
	return out, c.do(ctx, "PUT", "/api/admin/federation", p, &out)
}

// DeadLetter is a message the node gave up delivering.
type DeadLetter struct {
	MessageID string `json:"message_id"`
	Peer      string `json:"peer"`
	Reason    string `json:"reason"`
	Code      string `json:"code"`
	Attempts  int    `json:"attempts"`
	FailedAt  string `json:"failed_at"`
}

// DeadLetters lists them (admin).
func (c *Client) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out struct {
		DeadLetters []DeadLetter `json:"dead_letters"`
	}
	err := c.do(ctx, "GET", "/api/admin/outbox/dead", nil, &out)
	return out.DeadLetters, err
}

// RotateKeys makes a new key of a use ("sig" or "enc") (admin).
func (c *Client) RotateKeys(ctx context.Context, use, overlap string) (string, error) {
	var out struct{ ID string }
	in := map[string]string{"use": use}
	if overlap != "" {
		in["overlap"] = overlap
	}
	err := c.do(ctx, "POST", "/api/admin/keys/rotate", in, &out)
	return out.ID, err
}

// RevokeAllSessions revokes every session on the node (admin).
func (c *Client) RevokeAllSessions(ctx context.Context) (int, error) {
	var out struct{ Revoked int }
	err := c.do(ctx, "POST", "/api/admin/sessions/revoke-all", nil, &out)
	return out.Revoked, err
}

// Ban is a ban as the admin API shows it.
type Ban struct {
	Key       string `json:"key"`
	Until     string `json:"until"`
	Reason    string `json:"reason"`
	Level     int    `json:"level"`
	CreatedAt string `json:"created_at"`
	Active    bool   `json:"active"`
}

// Bans lists bans (admin).
func (c *Client) Bans(ctx context.Context) ([]Ban, error) {
	var out struct{ Bans []Ban }
	err := c.do(ctx, "GET", "/api/admin/bans", nil, &out)
	return out.Bans, err
}

// AddBan bans an IP or IPv6 /64 (admin); an empty duration escalates
// automatically.
func (c *Client) AddBan(ctx context.Context, key, duration, reason string) (Ban, error) {
	in := map[string]string{"key": key}
	if duration != "" {
		in["duration"] = duration
	}
	if reason != "" {
		in["reason"] = reason
	}
	var b Ban
	err := c.do(ctx, "POST", "/api/admin/bans", in, &b)
	return b, err
}

// LiftBan lifts a ban (admin).
func (c *Client) LiftBan(ctx context.Context, key string) error {
	return c.do(ctx, "DELETE", "/api/admin/bans?key="+url.QueryEscape(key), nil, nil)
}

// RotateJWTSecret makes a new JWT secret version in Vault (admin).
func (c *Client) RotateJWTSecret(ctx context.Context) (int, error) {
	var out struct{ Version int }
	err := c.do(ctx, "POST", "/api/admin/jwt/rotate", nil, &out)
	return out.Version, err
}
