package redis

import (
	"context"
	"encoding/json"
	"time"
)

type peerDoc struct {
	Doc       []byte
	FetchedAt time.Time
}

// PeerDocument returns a cached peer document.
func (s *Store) PeerDocument(ctx context.Context, domain string) (_ []byte, _ time.Time, err error) {
	defer wrap(&err, "peer document")
	v, err := s.c.HGet(ctx, s.key("peers"), domain).Bytes()
	if err != nil {
		return nil, time.Time{}, notFound(err)
	}
	var p peerDoc
	err = json.Unmarshal(v, &p)
	return p.Doc, p.FetchedAt, err
}

// SetPeerDocument caches a peer document for every replica.
func (s *Store) SetPeerDocument(ctx context.Context, domain string, doc []byte, fetchedAt time.Time) (err error) {
	defer wrap(&err, "set peer document")
	v, _ := json.Marshal(peerDoc{doc, fetchedAt})
	return s.c.HSet(ctx, s.key("peers"), domain, v).Err()
}
