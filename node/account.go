package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fednode/fednode"
)

// This file serves what users do to their own account: end every session
// (POST /api/auth/logout-all), delete the account (DELETE /api/me) and
// export it (GET /api/me/export).

// handleLogoutAll revokes every session of the caller; their sockets close.
func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFromContext(r.Context())
	ids, err := s.store.DeleteUserSessions(r.Context(), p.Session.Username)
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("logout-all: %w", err))
		return
	}
	s.revoked(ids)
	s.audit.InfoContext(r.Context(), "sessions.revoked_self", "user", p.Session.Username, "ip", clientIP(r), "sessions", len(ids))
	w.WriteHeader(http.StatusNoContent)
}

// handleDeleteMe deletes the caller's account, as an admin's delete does,
// once the password is checked. The last active admin cannot.
func (s *Server) handleDeleteMe(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password" strictjson:"required"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	name, ip := p.Session.Username, clientIP(r)
	u, err := s.accounts.verify(r.Context(), name, req.Password, ip, nil)
	if fednode.ErrorCode(err) == fednode.ECredentials {
		err = fednode.FieldError(fednode.ECredentials, "password", "the password is wrong")
	}
	if err == nil && u.Role == fednode.RoleAdmin {
		var others bool
		if others, err = s.otherActiveAdmin(r.Context(), name); err == nil && !others {
			err = fednode.Errorf(fednode.EConflict, "you are the last active admin; grant the role to another user first")
		}
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	del, err := s.store.DeleteUser(r.Context(), fednode.DeletedUser{Username: name, DeletedAt: s.now().UTC(), By: name}, s.cfg.NodeDomain)
	s.revoked(del.Sessions)
	if errors.Is(err, fednode.ErrNotFound) {
		err = fednode.Errorf(fednode.EUnauthorized, "the token is missing, invalid, expired or revoked") // deleted meanwhile
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.audit.WarnContext(r.Context(), "account.deleted", "user", name, "ip", ip, "sessions_revoked", len(del.Sessions), "messages_deleted", del.Messages)
	writeJSON(w, http.StatusOK, map[string]any{"username": u.Username, "sessions_revoked": len(del.Sessions), "messages_deleted": del.Messages})
}

// exportPage is how many mailbox entries the export reads at a time.
const exportPage = maxPageSize

// handleExport streams the caller's account, whole mailbox (oldest first),
// blocks and conversations as one JSON document, a page of the mailbox at
// a time: the mailbox is never held in memory. An error after the first
// byte can only cut the document short (the client sees invalid JSON),
// and is logged.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, _ := principalFromContext(ctx)
	name := p.Session.Username
	u, err := s.store.User(ctx, name)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	blocks, err := s.store.Blocks(ctx, name)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="fednode-export-%s.json"`, name))
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fail := func(err error) {
		s.log.ErrorContext(ctx, "export cut short", "user", name, "request_id", requestIDFromContext(ctx), "err", err)
	}
	fmt.Fprintf(w, `{"exported_at":%q,"account":`, s.now().UTC().Format(timeFormat))
	enc.Encode(map[string]string{
		"username": u.Username, "address": fednode.Address{User: name, Domain: s.cfg.NodeDomain}.String(),
		"role": u.Role, "created_at": u.CreatedAt.UTC().Format(time.RFC3339),
	})
	fmt.Fprint(w, `,"messages":[`)
	var after uint64
	n := 0
	for {
		es, err := s.store.Mailbox(ctx, name, after, exportPage)
		if err != nil {
			fail(err)
			return
		}
		for _, e := range es {
			if n++; n > 1 {
				fmt.Fprint(w, ",")
			}
			enc.Encode(entryJSON(e))
			after = e.Cursor
		}
		if len(es) < exportPage {
			break
		}
	}
	fmt.Fprint(w, `],"blocks":`)
	bj := make([]blockJSON, 0, len(blocks))
	for _, b := range blocks {
		bj = append(bj, toBlockJSON(b))
	}
	enc.Encode(bj)
	fmt.Fprint(w, `,"conversations":[`)
	var before uint64
	c := 0
	for {
		cs, err := s.store.Conversations(ctx, name, before, exportPage)
		if err != nil {
			fail(err)
			return
		}
		for _, cv := range cs {
			if c++; c > 1 {
				fmt.Fprint(w, ",")
			}
			enc.Encode(toConversationJSON(cv))
			before = cv.LastCursor
		}
		if len(cs) < exportPage {
			break
		}
	}
	fmt.Fprint(w, "]}\n")
	s.audit.InfoContext(ctx, "account.exported", "user", name, "ip", clientIP(r), "messages", n)
}
