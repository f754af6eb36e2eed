package bolt

import (
	"bytes"
	"context"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

func sessionIndexKey(s fednode.Session) []byte {
	return append(u64(uint64(s.IssuedAt.UnixNano())), s.ID...)
}

// CreateSession stores s. When its user then has more than max sessions, the
// oldest are deleted and their ids returned.
func (d *Store) CreateSession(ctx context.Context, s fednode.Session, max int) ([]string, error) {
	var evicted []string
	err := d.update("create session", func(tx *bbolt.Tx) error {
		idx, err := tx.Bucket(bUserSessions).CreateBucketIfNotExists([]byte(s.Username))
		if err != nil {
			return err
		}
		if err := put(tx.Bucket(bSessions), []byte(s.ID), s); err != nil {
			return err
		}
		if err := idx.Put(sessionIndexKey(s), nil); err != nil {
			return err
		}
		if max <= 0 {
			return nil
		}
		var all [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			all = append(all, bytes.Clone(k))
		}
		if len(all) <= max {
			return nil
		}
		old := all[:len(all)-max]
		for _, k := range old {
			id := string(k[8:])
			evicted = append(evicted, id)
			if err := idx.Delete(k); err != nil {
				return err
			}
			if err := tx.Bucket(bSessions).Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return evicted, nil
}

// Session returns the live session with that id.
func (d *Store) Session(ctx context.Context, id string) (fednode.Session, error) {
	var s fednode.Session
	err := d.view("session", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bSessions), []byte(id), &s)
	})
	return s, err
}

func deleteSession(tx *bbolt.Tx, s fednode.Session) error {
	if idx := tx.Bucket(bUserSessions).Bucket([]byte(s.Username)); idx != nil {
		if err := idx.Delete(sessionIndexKey(s)); err != nil {
			return err
		}
	}
	return tx.Bucket(bSessions).Delete([]byte(s.ID))
}

// DeleteSession revokes one session. Deleting an absent session is not an
// error: revocation is idempotent.
func (d *Store) DeleteSession(ctx context.Context, id string) error {
	return d.update("delete session", func(tx *bbolt.Tx) error {
		var s fednode.Session
		if err := get(tx.Bucket(bSessions), []byte(id), &s); err != nil {
			if errors.Is(err, fednode.ErrNotFound) {
				return nil
			}
			return err
		}
		return deleteSession(tx, s)
	})
}

// DeleteUserSessions revokes every session of one user and returns their ids.
func (d *Store) DeleteUserSessions(ctx context.Context, username string) ([]string, error) {
	var ids []string
	err := d.update("delete user sessions", func(tx *bbolt.Tx) error {
		name := []byte(fednode.CanonicalUsername(username))
		idx := tx.Bucket(bUserSessions).Bucket(name)
		if idx == nil {
			return nil
		}
		sessions := tx.Bucket(bSessions)
		if err := idx.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k[8:]))
			return sessions.Delete(k[8:])
		}); err != nil {
			return err
		}
		return tx.Bucket(bUserSessions).DeleteBucket(name)
	})
	return ids, err
}

// DeleteAllSessions revokes every session of every user and returns their
// ids: the operator's answer to a suspected breach.
func (d *Store) DeleteAllSessions(ctx context.Context) ([]string, error) {
	var ids []string
	err := d.update("delete all sessions", func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bSessions).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		}); err != nil {
			return err
		}
		for _, b := range [][]byte{bSessions, bUserSessions} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// PruneSessions deletes sessions that expired before now.
func (d *Store) PruneSessions(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := d.update("prune sessions", func(tx *bbolt.Tx) error {
		var expired []fednode.Session
		if err := tx.Bucket(bSessions).ForEach(func(k, v []byte) error {
			var s fednode.Session
			if err := decode(k, v, &s); err != nil {
				return err
			}
			if s.ExpiresAt.Before(now) {
				expired = append(expired, s)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, s := range expired {
			if err := deleteSession(tx, s); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}
