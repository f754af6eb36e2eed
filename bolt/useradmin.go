package bolt

import (
	"bytes"
	"context"
	"errors"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// bDeleted holds the names of deleted users: canonical username ->
// fednode.DeletedUser. CreateUser refuses them.
var bDeleted = []byte("deleted_users")

// Users returns a page of users matching q, in order of canonical name.
func (d *Store) Users(ctx context.Context, q fednode.UserQuery) ([]fednode.User, error) {
	var out []fednode.User
	err := d.view("users", func(tx *bbolt.Tx) error {
		c := tx.Bucket(bUsers).Cursor()
		k, v := c.First()
		start := fednode.CanonicalUsername(q.Prefix)
		if after := fednode.CanonicalUsername(q.After); after >= start && after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		} else if start != "" {
			k, v = c.Seek([]byte(start))
		}
		for ; k != nil && len(out) < q.Limit && bytes.HasPrefix(k, []byte(start)); k, v = c.Next() {
			var u fednode.User
			if err := decode(k, v, &u); err != nil {
				return err
			}
			if q.Matches(u) {
				out = append(out, u)
			}
		}
		return nil
	})
	return out, err
}

// DeleteUser deletes a user, its sessions, login failures, mailbox and the
// messages only it holds, and keeps tomb, all in one fsynced transaction.
func (d *Store) DeleteUser(ctx context.Context, tomb fednode.DeletedUser, domain string) (fednode.UserDeletion, error) {
	var del fednode.UserDeletion
	name := []byte(fednode.CanonicalUsername(tomb.Username))
	err := d.update("delete user", func(tx *bbolt.Tx) error {
		del = fednode.UserDeletion{}
		users := tx.Bucket(bUsers)
		var u fednode.User
		if err := get(users, name, &u); err != nil {
			return err
		}
		tomb.Username = u.Username
		if err := put(tx.Bucket(bDeleted), name, tomb); err != nil {
			return err
		}
		if err := users.Delete(name); err != nil {
			return err
		}
		if idx := tx.Bucket(bUserSessions).Bucket(name); idx != nil {
			sessions := tx.Bucket(bSessions)
			if err := idx.ForEach(func(k, _ []byte) error {
				del.Sessions = append(del.Sessions, string(k[8:]))
				return sessions.Delete(k[8:])
			}); err != nil {
				return err
			}
			if err := tx.Bucket(bUserSessions).DeleteBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bFailures).Delete(name); err != nil {
			return err
		}
		if err := tx.Bucket(bUserKeys).Delete(name); err != nil {
			return err
		}
		for _, top := range userIndexBuckets {
			if t := tx.Bucket(top); t != nil && t.Bucket(name) != nil {
				if err := t.DeleteBucket(name); err != nil {
					return err
				}
			}
		}
		mb := tx.Bucket(bMailboxes).Bucket(name)
		if mb == nil {
			return nil
		}
		msgs := tx.Bucket(bMessages)
		exists := func(other string) bool { return users.Get([]byte(other)) != nil }
		var doomed [][]byte
		if err := mb.ForEach(func(_, id []byte) error {
			var m fednode.Message
			if err := get(msgs, id, &m); err != nil {
				if errors.Is(err, fednode.ErrNotFound) {
					return nil
				}
				return err
			}
			if fednode.HeldOnlyBy(m, string(name), domain, exists) {
				doomed = append(doomed, bytes.Clone(id))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, id := range doomed {
			if err := msgs.Delete(id); err != nil {
				return err
			}
		}
		if err := d.deleteDeadLetters(tx, doomed...); err != nil {
			return err
		}
		del.Messages = len(doomed)
		return tx.Bucket(bMailboxes).DeleteBucket(name)
	})
	return del, err
}

// deletedName reports whether a deleted user held the name.
func deletedName(tx *bbolt.Tx, name []byte) bool {
	return tx.Bucket(bDeleted).Get(name) != nil
}
