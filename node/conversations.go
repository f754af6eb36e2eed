package node

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
)

// This file serves what the web client reads and changes in a user's own
// mailbox: conversations (the people a user exchanges messages with),
// blocks, and deleting a message (docs/API.md "Conversations", "Blocks").

// conversationJSON is a conversation on the wire.
type conversationJSON struct {
	With        string `json:"with"`
	LastCursor  uint64 `json:"last_cursor"`
	LastAt      string `json:"last_at"`
	LastPreview string `json:"last_preview"`
	LastFromMe  bool   `json:"last_from_me"`
	Unread      int    `json:"unread"`
	// E2E says that the last message is end-to-end encrypted (its preview
	// is empty).
	E2E bool `json:"e2e,omitempty"`
}

func toConversationJSON(c fednode.Conversation) conversationJSON {
	return conversationJSON{With: c.With, LastCursor: c.LastCursor, LastAt: c.LastAt.UTC().Format(timeFormat),
		LastPreview: c.LastPreview, LastFromMe: c.LastFromMe, Unread: c.Unread, E2E: c.LastE2E}
}

// blockJSON is a block on the wire: an address or a domain.
type blockJSON struct {
	Address   string `json:"address,omitempty"`
	Domain    string `json:"domain,omitempty"`
	CreatedAt string `json:"created_at"`
}

// pageQuery reads the "before" cursor (0: the newest) and "limit" of a
// page read newest first.
func pageQuery(r *http.Request) (before uint64, limit int, err error) {
	q := r.URL.Query()
	if v := q.Get("before"); v != "" {
		if before, err = strconv.ParseUint(v, 10, 64); err != nil || before == 0 || v[0] == '0' {
			return 0, 0, fednode.FieldError(fednode.EInvalidParam, "before", "before must be a cursor returned by this node")
		}
	}
	limit, err = parseLimit(q.Get("limit"))
	return before, limit, err
}

// parseLimit reads a page's "limit": 1 to maxPageSize, defaultPageSize
// when absent.
func parseLimit(v string) (int, error) {
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, fednode.FieldError(fednode.EInvalidParam, "limit", "limit must be 1 to %d", maxPageSize)
	}
	return n, nil
}

// conversationWith reads the {with} of a conversation path: a full
// address user@domain, canonicalised.
func conversationWith(r *http.Request) (string, error) {
	with := mux.Vars(r)["with"]
	a, err := fednode.ParseAddress(with, "")
	if err != nil || !strings.Contains(with, "@") {
		return "", fednode.FieldError(fednode.EInvalidAddress, "with", "a conversation is named by a full address, user@domain")
	}
	return fednode.ConversationKey(a), nil
}

// handleConversations: GET /api/conversations?before=&limit=.
func (s *Server) handleConversations(w http.ResponseWriter, r *http.Request) {
	before, limit, err := pageQuery(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	cs, err := s.store.Conversations(r.Context(), p.Session.Username, before, limit)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Conversations []conversationJSON `json:"conversations"`
		Next          string             `json:"next"`
	}{Conversations: make([]conversationJSON, 0, len(cs))}
	for _, c := range cs {
		out.Conversations = append(out.Conversations, toConversationJSON(c))
	}
	if len(cs) == limit {
		out.Next = formatCursor(cs[len(cs)-1].LastCursor)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleConversationMessages: GET /api/conversations/{with}/messages.
func (s *Server) handleConversationMessages(w http.ResponseWriter, r *http.Request) {
	with, err := conversationWith(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	before, limit, err := pageQuery(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	es, err := s.store.ConversationMessages(r.Context(), p.Session.Username, with, before, limit)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Messages   []messageJSON `json:"messages"`
		NextBefore uint64        `json:"next_before"`
	}{Messages: make([]messageJSON, 0, len(es))}
	for _, e := range es {
		out.Messages = append(out.Messages, entryJSON(e))
	}
	if len(es) == limit {
		out.NextBefore = es[len(es)-1].Cursor
	}
	writeJSON(w, http.StatusOK, out)
}

// handleConversationRead: POST /api/conversations/{with}/read {"cursor":N}.
func (s *Server) handleConversationRead(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Cursor *uint64 `json:"cursor" strictjson:"required"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	with, err := conversationWith(r)
	if err == nil && req.Cursor == nil {
		err = fednode.FieldError(fednode.EMissingField, "cursor", "cursor is required")
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	err = s.store.MarkConversationRead(r.Context(), p.Session.Username, with, *req.Cursor)
	if errors.Is(err, fednode.ErrNotFound) {
		err = fednode.Errorf(fednode.ENotFound, "no conversation with %s", with)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleDeleteMessage: DELETE /api/messages/{id} removes a message from
// the caller's mailbox.
func (s *Server) handleDeleteMessage(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	p, _ := principalFromContext(r.Context())
	var err error = fednode.ErrNotFound
	if fednode.ValidID(id) {
		err = s.store.DeleteMailboxMessage(r.Context(), p.Session.Username, id, s.cfg.NodeDomain)
	}
	if errors.Is(err, fednode.ErrNotFound) {
		err = fednode.Errorf(fednode.ENotFound, "no such message")
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.audit.InfoContext(r.Context(), "message.deleted", "user", p.Session.Username, "message", id, "ip", clientIP(r))
	w.WriteHeader(http.StatusNoContent)
}

// parseBlock reads a block's target: exactly one of an address or a
// domain, canonical.
func (s *Server) parseBlock(address, domain string) (fednode.Block, error) {
	switch {
	case address != "" && domain != "":
		return fednode.Block{}, fednode.Errorf(fednode.EInvalid, "give an address or a domain, not both")
	case address != "":
		a, err := fednode.ParseAddress(address, s.cfg.NodeDomain)
		if err != nil {
			return fednode.Block{}, fednode.FieldError(fednode.EInvalidAddress, "address", "%s", fednode.ErrorMessage(err))
		}
		return fednode.Block{Address: fednode.ConversationKey(a)}, nil
	case domain != "":
		d, err := fednode.ParseDomain(domain)
		if err != nil {
			return fednode.Block{}, fednode.FieldError(fednode.EInvalidAddress, "domain", "%s", fednode.ErrorMessage(err))
		}
		return fednode.Block{Domain: d}, nil
	}
	return fednode.Block{}, fednode.FieldError(fednode.EMissingField, "address", "give an address or a domain")
}

func toBlockJSON(b fednode.Block) blockJSON {
	return blockJSON{Address: b.Address, Domain: b.Domain, CreatedAt: b.CreatedAt.UTC().Format(timeFormat)}
}

// handleBlocks: GET /api/blocks.
func (s *Server) handleBlocks(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFromContext(r.Context())
	bs, err := s.store.Blocks(r.Context(), p.Session.Username)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Blocks []blockJSON `json:"blocks"`
	}{Blocks: make([]blockJSON, 0, len(bs))}
	for _, b := range bs {
		out.Blocks = append(out.Blocks, toBlockJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAddBlock: POST /api/blocks {"address"} or {"domain"}.
func (s *Server) handleAddBlock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Address string `json:"address"`
		Domain  string `json:"domain"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	b, err := s.parseBlock(req.Address, req.Domain)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	b.Username, b.CreatedAt = p.Session.Username, s.now().UTC().Truncate(time.Millisecond)
	if err := s.store.AddBlock(r.Context(), b); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.audit.InfoContext(r.Context(), "block.added", "user", b.Username, "address", b.Address, "domain", b.Domain, "ip", clientIP(r))
	writeJSON(w, http.StatusCreated, toBlockJSON(b))
}

// handleRemoveBlock: DELETE /api/blocks?address= or ?domain=.
func (s *Server) handleRemoveBlock(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	b, err := s.parseBlock(q.Get("address"), q.Get("domain"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	err = s.store.DeleteBlock(r.Context(), p.Session.Username, b)
	if errors.Is(err, fednode.ErrNotFound) {
		err = fednode.Errorf(fednode.ENotFound, "no such block")
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.audit.InfoContext(r.Context(), "block.removed", "user", p.Session.Username, "address", b.Address, "domain", b.Domain, "ip", clientIP(r))
	w.WriteHeader(http.StatusNoContent)
}
