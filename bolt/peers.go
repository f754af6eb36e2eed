package bolt

import (
	"context"
	"time"

	bbolt "go.etcd.io/bbolt"
)

type peerDoc struct {
	Doc       []byte
	FetchedAt time.Time
}

// PeerDocument returns a cached peer document and when it was fetched.
func (d *Store) PeerDocument(ctx context.Context, domain string) ([]byte, time.Time, error) {
	var p peerDoc
	err := d.view("peer document", func(tx *bbolt.Tx) error { return get(tx.Bucket(bPeers), []byte(domain), &p) })
	return p.Doc, p.FetchedAt, err
}

// SetPeerDocument caches a peer document.
func (d *Store) SetPeerDocument(ctx context.Context, domain string, doc []byte, fetchedAt time.Time) error {
	return d.update("set peer document", func(tx *bbolt.Tx) error { return put(tx.Bucket(bPeers), []byte(domain), peerDoc{doc, fetchedAt}) })
}
