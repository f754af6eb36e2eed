package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
)

// messageStore is what messaging needs from a store.
type messageStore interface {
	User(ctx context.Context, username string) (fednode.User, error)
	AppendMessage(ctx context.Context, m fednode.Message, mailboxes ...string) ([]uint64, error)
	Message(ctx context.Context, id string) (fednode.Message, error)
	Mailbox(ctx context.Context, username string, after uint64, limit int) ([]fednode.Entry, error)
	MailboxHead(ctx context.Context, username string) (uint64, error)
	AppendOutgoing(ctx context.Context, m fednode.Message, senderMailbox string) (uint64, error)
	Blocked(ctx context.Context, username string, from fednode.Address) (bool, error)
	UserKeys(ctx context.Context, username string) (fednode.UserKeys, error)
}

// messaging accepts and serves messages. Each message lives once in the
// store and is listed in the mailbox of each local party (sender and
// recipient), which is what GET /api/messages and the WebSocket read.
type messaging struct {
	store    messageStore
	domain   string
	now      func() time.Time
	notify   func(users ...string)
	allowed  func(domain string) bool // the federation policy
	enqueued func()                   // wakes the outbox
}

// send validates and durably stores a message from a local user. It returns
// only after the store has fsynced it; then live sockets are woken.
func (m *messaging) send(ctx context.Context, from string, to string, content string, tags []string) (fednode.Message, error) {
	content, err := fednode.NormalizeContent(content)
	if err != nil {
		return fednode.Message{}, err
	}
	if err := fednode.ValidateTags(tags); err != nil {
		return fednode.Message{}, err
	}
	addr, err := fednode.ParseAddress(to, m.domain)
	if err != nil {
		return fednode.Message{}, fednode.FieldError(fednode.ErrorCode(err), "to", "%s", fednode.ErrorMessage(err))
	}
	if tags == nil {
		tags = []string{}
	}
	now := m.now().UTC()
	msg := fednode.Message{
		ID:        fednode.NewID(now),
		From:      fednode.Address{User: from, Domain: m.domain},
		To:        addr,
		Content:   content,
		Tags:      tags,
		CreatedAt: now,
		Status:    fednode.StatusDelivered,
	}
	return m.commit(ctx, msg)
}

// commit stores msg, from a local user, for a local recipient or another
// node, and wakes whoever it concerns.
func (m *messaging) commit(ctx context.Context, msg fednode.Message) (fednode.Message, error) {
	addr, from := msg.To, msg.From.User
	if addr.Domain != m.domain {
		return m.sendRemote(ctx, msg)
	}
	if err := fednode.CheckRecipient(ctx, m.store, addr, msg.From); err != nil {
		var e *fednode.Error
		if errors.As(err, &e) {
			e.Field = "to"
			return fednode.Message{}, e
		}
		return fednode.Message{}, fmt.Errorf("send: %w", err)
	}
	if _, err := m.store.AppendMessage(ctx, msg, from, addr.User); err != nil {
		return fednode.Message{}, fmt.Errorf("send: %w", err)
	}
	m.notify(from, addr.User)
	return msg, nil
}

// sendRemote stores a message for another node with its delivery job, in
// one transaction, and wakes the outbox. Whether the recipient exists is for
// the recipient's node to say; the answer shows in the message's status.
func (m *messaging) sendRemote(ctx context.Context, msg fednode.Message) (fednode.Message, error) {
	if !m.allowed(msg.To.Domain) {
		return fednode.Message{}, fednode.FieldError(fednode.ERemote, "to", "this node does not federate with %s", msg.To.Domain)
	}
	msg.Status = fednode.StatusQueued
	if _, err := m.store.AppendOutgoing(ctx, msg, msg.From.User); err != nil {
		return fednode.Message{}, fmt.Errorf("send: %w", err)
	}
	m.notify(msg.From.User)
	m.enqueued()
	return msg, nil
}

// visibleTo reports whether a local user is a party to msg.
func (m *messaging) visibleTo(msg fednode.Message, user string) bool {
	return (msg.From.Domain == m.domain && msg.From.User == user) || (msg.To.Domain == m.domain && msg.To.User == user)
}

// messageJSON is the wire form of a message, in the API and on the socket.
type messageJSON struct {
	ID        string   `json:"id"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Content   string   `json:"content"`
	Tags      []string `json:"tags"`
	CreatedAt string   `json:"created_at"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason,omitempty"`
	// ReasonCode is the stable code of Reason (fednode.Delivery*).
	ReasonCode string `json:"reason_code,omitempty"`
	Cursor     string `json:"cursor,omitempty"`
	// Delivery is the state of a queued remote message, for its sender,
	// in GET /api/messages/{id} only.
	Delivery *deliveryJSON `json:"delivery,omitempty"`
	// E2E is the end-to-end encrypted body, as its sender made it; Content
	// is then "" and Tags [].
	E2E *fednode.E2E `json:"e2e,omitempty"`
}

// timeFormat is RFC 3339 in UTC with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func toJSON(m fednode.Message) messageJSON {
	tags := m.Tags
	if tags == nil {
		tags = []string{}
	}
	return messageJSON{
		ID: m.ID, From: m.From.String(), To: m.To.String(), Content: m.Content, Tags: tags,
		CreatedAt: m.CreatedAt.UTC().Format(timeFormat), Status: m.Status, Reason: m.Reason, ReasonCode: m.ReasonCode,
		E2E: m.E2E,
	}
}

func entryJSON(e fednode.Entry) messageJSON {
	j := toJSON(e.Message)
	j.Cursor = formatCursor(e.Cursor)
	return j
}

// Cursors are the decimal mailbox position. They are opaque to clients but
// stable: the same cursor always means the same place.
func formatCursor(c uint64) string { return strconv.FormatUint(c, 10) }

func parseCursor(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	c, err := strconv.ParseUint(s, 10, 64)
	if err != nil || (len(s) > 1 && s[0] == '0') {
		return 0, fednode.FieldError(fednode.EInvalidParam, "after", "after must be a cursor returned by this node")
	}
	return c, nil
}

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	req, err := decodeSend(w, r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	var msg fednode.Message
	if req.E2E != nil {
		msg, err = s.messages.sendE2E(r.Context(), p.Session.Username, req)
	} else if err = req.plain(); err == nil {
		msg, err = s.messages.send(r.Context(), p.Session.Username, req.To, *req.Content, req.tags())
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": msg.ID, "status": msg.Status})
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := parseCursor(q.Get("after"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	entries, err := s.messages.store.Mailbox(r.Context(), p.Session.Username, after, limit)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Messages []messageJSON `json:"messages"`
		Next     string        `json:"next"`
	}{Messages: make([]messageJSON, 0, len(entries)), Next: formatCursor(after)}
	for _, e := range entries {
		out.Messages = append(out.Messages, entryJSON(e))
		out.Next = formatCursor(e.Cursor)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	notFound := fednode.Errorf(fednode.ENotFound, "no such message")
	if !fednode.ValidID(id) {
		writeError(w, r, s.log, notFound)
		return
	}
	msg, err := s.messages.store.Message(r.Context(), id)
	if errors.Is(err, fednode.ErrNotFound) {
		writeError(w, r, s.log, notFound)
		return
	} else if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	if !s.messages.visibleTo(msg, p.Session.Username) {
		writeError(w, r, s.log, notFound) // not 403: do not confirm the id exists
		return
	}
	out := toJSON(msg)
	if msg.Status == fednode.StatusQueued && msg.From.Domain == s.cfg.NodeDomain && msg.From.User == p.Session.Username {
		if out.Delivery, err = deliveryOf(r.Context(), s.store, msg, s.now()); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}
