package node

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/outbox"
)

// This file shows a remote message's delivery to its sender: the state of
// a queued one (GET /api/messages/{id}), status events on the sender's
// sockets, and the outbox's wake-ups that cross replicas.

// deliveryJSON is the delivery state of a queued remote message, shown to
// its sender.
type deliveryJSON struct {
	Attempts      int    `json:"attempts"`
	LastError     string `json:"last_error,omitempty"`
	LastErrorCode string `json:"last_error_code,omitempty"`
	NextAttemptAt string `json:"next_attempt_at,omitempty"`
}

// deliveryStore is what the delivery state is read from.
type deliveryStore interface {
	OutgoingJob(ctx context.Context, peer, messageID string) (fednode.Job, error)
	Meta(ctx context.Context, key string) ([]byte, error)
}

// deliveryOf returns the delivery state of msg, a queued message to
// another node: its job's attempts and last error, and when the outbox
// tries its peer next, when the peer is backing off. A job not found (it
// finished meanwhile) gives no state.
func deliveryOf(ctx context.Context, store deliveryStore, msg fednode.Message, now time.Time) (*deliveryJSON, error) {
	j, err := store.OutgoingJob(ctx, msg.To.Domain, msg.ID)
	if errors.Is(err, fednode.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	d := &deliveryJSON{Attempts: j.Attempts, LastError: j.LastError, LastErrorCode: j.LastCode}
	v, err := store.Meta(ctx, outbox.NextAttemptKey(msg.To.Domain))
	if err != nil && !errors.Is(err, fednode.ErrNotFound) {
		return nil, err
	}
	if next := outbox.ParseNextAttempt(v); next.After(now) {
		d.NextAttemptAt = next.UTC().Format(timeFormat)
	}
	return d, nil
}

// statusEvent is the socket frame that tells a sender the status of one of
// its remote messages changed (docs/API.md, Live delivery).
type statusEvent struct {
	Event      string `json:"event"` // always "status"
	ID         string `json:"id"`
	Status     string `json:"status"`
	ReasonCode string `json:"reason_code,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// statusNote is a statusEvent on its way to a user, as the broker carries it.
type statusNote struct {
	User  string      `json:"user"`
	Event statusEvent `json:"event"`
}

// publishStatus tells the senders' sockets, on every replica, of status
// changes.
func (s *Server) publishStatus(changes []outbox.StatusChange) {
	payload := make([]string, 0, len(changes))
	for _, c := range changes {
		b, _ := json.Marshal(statusNote{User: c.Sender, Event: statusEvent{Event: "status", ID: c.MessageID, Status: c.Status, ReasonCode: c.Code, Reason: c.Reason}})
		payload = append(payload, string(b))
	}
	if err := s.broker.Publish(s.bgCtx, TopicStatus, payload); err != nil {
		s.log.Warn("broker: status", "err", err)
		s.onStatusEvent(payload) // at least this replica's sockets
	}
}

// onStatusEvent hands status events to the sockets of their users.
func (s *Server) onStatusEvent(payload []string) {
	for _, p := range payload {
		var n statusNote
		if err := json.Unmarshal([]byte(p), &n); err != nil {
			s.log.Warn("broker: a status event does not decode", "err", err)
			continue
		}
		s.hub.status(n.User, n.Event)
	}
}

// wakeThrottle is the shortest time between two wake-ups of one peer's
// queue that deliveries from it cause.
const wakeThrottle = time.Second

// peerWaker turns deliveries from peers into wake-ups of our queues for
// them, at most one a peer a wakeThrottle, and only for peers with jobs
// waiting: a delivery from a peer we owe nothing costs a map lookup.
type peerWaker struct {
	mu   sync.Mutex
	last map[string]time.Time // bounded by the peers with jobs waiting
}

// peerDelivered is the inbox's OnVerified hook.
func (s *Server) peerDelivered(peer string) {
	if !s.outbox.Waiting(peer) {
		return
	}
	now := s.now()
	s.waker.mu.Lock()
	if now.Sub(s.waker.last[peer]) < wakeThrottle {
		s.waker.mu.Unlock()
		return
	}
	if s.waker.last == nil || len(s.waker.last) > 10_000 {
		s.waker.last = map[string]time.Time{}
	}
	s.waker.last[peer] = now
	s.waker.mu.Unlock()
	s.wakePeers(peer)
}

// wakePeers ends the backoff of the peers' queues on every replica (the
// one that serves a peer may be another).
func (s *Server) wakePeers(peers ...string) {
	if err := s.broker.Publish(s.bgCtx, TopicWake, peers); err != nil {
		s.log.Warn("broker: wake", "err", err)
		s.onWakeEvent(peers)
	}
}

func (s *Server) onWakeEvent(peers []string) {
	for _, p := range peers {
		s.outbox.Wake(s.bgCtx, p)
	}
}
