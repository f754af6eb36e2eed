package node

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/outbox"
)

// deadLetterSelection is the body of the dead-letter actions: exactly one
// of a message id, a peer, or all.
type deadLetterSelection struct {
	MessageID string `json:"message_id"`
	Peer      string `json:"peer"`
	All       bool   `json:"all"`
}

// filter checks the selection and returns the store's filter, with the
// audit attributes that name it.
func (d deadLetterSelection) filter() (fednode.DeadLetterFilter, []any, error) {
	n := 0
	for _, set := range []bool{d.MessageID != "", d.Peer != "", d.All} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return fednode.DeadLetterFilter{}, nil, fednode.Errorf(fednode.EInvalid, `give exactly one of "message_id", "peer" or "all": true`)
	case d.MessageID != "" && !fednode.ValidID(d.MessageID):
		return fednode.DeadLetterFilter{}, nil, fednode.FieldError(fednode.EInvalid, "message_id", "message_id is not a message id")
	case d.Peer != "":
		if err := checkPeerDomain("peer", d.Peer); err != nil {
			return fednode.DeadLetterFilter{}, nil, err
		}
		return fednode.DeadLetterFilter{Peer: d.Peer}, []any{"peer", d.Peer}, nil
	case d.MessageID != "":
		return fednode.DeadLetterFilter{MessageID: d.MessageID}, []any{"message_id", d.MessageID}, nil
	}
	return fednode.DeadLetterFilter{}, []any{"all", true}, nil
}

// deadLetterAction is one admin action on dead letters: redrive or purge.
type deadLetterAction struct {
	event string // the audit event
	field string // the answer's count member
	do    func(ctx context.Context, f fednode.DeadLetterFilter) ([]fednode.DeadLetter, error)
	after func(dead []fednode.DeadLetter) // once done, with what it did
}

// handleDeadLetterAction serves POST /api/admin/outbox/dead/{redrive,purge}:
// it answers {"<field>": n, "message_ids": [...]}, and 404 when one
// message id was asked for and it is not a dead letter.
func (s *Server) handleDeadLetterAction(a deadLetterAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var sel deadLetterSelection
		if err := decodeBody(w, r, &sel); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		f, attrs, err := sel.filter()
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		dead, err := a.do(r.Context(), f)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if f.MessageID != "" && len(dead) == 0 {
			writeError(w, r, s.log, fednode.Errorf(fednode.ENotFound, "message %s is not a dead letter", f.MessageID))
			return
		}
		ids := make([]string, len(dead))
		for i, d := range dead {
			ids[i] = d.MessageID
		}
		who, _ := principalFromContext(r.Context())
		s.audit.WarnContext(r.Context(), a.event, append([]any{"by", who.Session.Username, "count", len(dead)}, attrs...)...)
		if a.after != nil && len(dead) > 0 {
			a.after(dead)
		}
		writeJSON(w, http.StatusOK, map[string]any{a.field: len(dead), "message_ids": ids})
	}
}

// handleRedrive puts dead letters back in their peers' queues; their
// senders see them queued again.
func (s *Server) handleRedrive() http.HandlerFunc {
	return s.handleDeadLetterAction(deadLetterAction{
		event: "dead_letters.redriven", field: "redriven",
		do: func(ctx context.Context, f fednode.DeadLetterFilter) ([]fednode.DeadLetter, error) {
			return s.store.RedriveDeadLetters(ctx, f, s.now())
		},
		after: s.redriven,
	})
}

// handlePurge forgets dead letters; their messages stay failed.
func (s *Server) handlePurge() http.HandlerFunc {
	return s.handleDeadLetterAction(deadLetterAction{event: "dead_letters.purged", field: "purged", do: s.store.PurgeDeadLetters})
}

// redriven wakes the outbox for the redriven messages and tells their
// senders they are queued again.
func (s *Server) redriven(dead []fednode.DeadLetter) {
	s.outbox.Notify()
	ids := make([]string, len(dead))
	for i, d := range dead {
		ids[i] = d.MessageID
	}
	ctx, cancel := context.WithTimeout(s.bgCtx, 5*time.Second)
	defer cancel()
	msgs, err := s.store.Messages(ctx, ids)
	if err != nil {
		s.log.Warn("redrive: read the messages to tell their senders", "err", err)
		return
	}
	var changes []outbox.StatusChange
	for _, id := range ids {
		if m, ok := msgs[id]; ok && m.From.Domain == s.cfg.NodeDomain {
			changes = append(changes, outbox.StatusChange{MessageID: id, Sender: m.From.User, Status: fednode.StatusQueued})
		}
	}
	if len(changes) > 0 {
		s.publishStatus(changes)
	}
}

// handleRetryPeer serves POST /api/admin/outbox/peers/{peer}/retry: the
// peer's queue is served now, its backoff reset, on whichever replica
// serves it.
func (s *Server) handleRetryPeer(w http.ResponseWriter, r *http.Request) {
	peer := mux.Vars(r)["peer"]
	if err := checkPeerDomain("peer", peer); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.wakePeers(peer)
	who, _ := principalFromContext(r.Context())
	s.audit.WarnContext(r.Context(), "peer.retry_now", "by", who.Session.Username, "peer", peer)
	writeJSON(w, http.StatusAccepted, map[string]string{"peer": peer})
}
