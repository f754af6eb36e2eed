package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// The conversation index of each user, kept by appendOne in the
// transaction that appends to the mailbox. Each top-level bucket holds one
// bucket per canonical username:
//
//	conversations:         with -> convRecord
//	conversation_order:    last cursor(8) -> with (newest last)
//	conversation_messages: with|0|cursor(8) -> kind(1)|message id
//	mailbox_ids:           message id -> cursor(8)|with
//
// kind is 's' for a message the user sent and 'r' for one received.
var (
	bConversations = []byte("conversations")
	bConvOrder     = []byte("conversation_order")
	bConvMessages  = []byte("conversation_messages")
	bMailboxIDs    = []byte("mailbox_ids")
)

// userIndexBuckets are the per-user buckets DeleteUser drops with the user.
var userIndexBuckets = [][]byte{bConversations, bConvOrder, bConvMessages, bMailboxIDs, bBlocks}

// convRecord is a stored conversation: what is served, and the read mark.
type convRecord struct {
	fednode.Conversation
	Read uint64
}

const (
	kindSent     = 's'
	kindReceived = 'r'
)

func convMessageKey(with string, cursor uint64) []byte {
	k := make([]byte, 0, len(with)+9)
	k = append(k, with...)
	k = append(k, 0)
	return append(k, u64(cursor)...)
}

// userBucket returns the bucket of user inside the top-level bucket top,
// creating it when create is set; nil when absent and not created.
func userBucket(tx *bbolt.Tx, top []byte, user string, create bool) (*bbolt.Bucket, error) {
	t := tx.Bucket(top)
	if !create {
		if t == nil {
			return nil, nil
		}
		return t.Bucket([]byte(user)), nil
	}
	return t.CreateBucketIfNotExists([]byte(user))
}

// indexConversation files m, appended at cursor to the mailbox of owner
// (canonical), in owner's conversation index.
func indexConversation(tx *bbolt.Tx, m fednode.Message, owner string, cursor uint64, outgoing bool) error {
	with, fromMe := fednode.ConversationOf(m, owner, outgoing)
	var b [4]*bbolt.Bucket
	for i, top := range [][]byte{bConversations, bConvOrder, bConvMessages, bMailboxIDs} {
		var err error
		if b[i], err = userBucket(tx, top, owner, true); err != nil {
			return err
		}
	}
	convs, order, cmsgs, ids := b[0], b[1], b[2], b[3]
	var rec convRecord
	if err := get(convs, []byte(with), &rec); err != nil && !errors.Is(err, fednode.ErrNotFound) {
		return err
	}
	if rec.LastCursor != 0 {
		if err := order.Delete(u64(rec.LastCursor)); err != nil {
			return err
		}
	}
	kind := byte(kindReceived)
	if fromMe {
		kind = kindSent
	} else {
		rec.Unread++
	}
	rec.With, rec.LastCursor, rec.LastAt, rec.LastPreview, rec.LastFromMe = with, cursor, m.CreatedAt, "", fromMe // the preview is read from the last message (Conversations)
	if err := put(convs, []byte(with), rec); err != nil {
		return err
	}
	if err := order.Put(u64(cursor), []byte(with)); err != nil {
		return err
	}
	if err := cmsgs.Put(convMessageKey(with, cursor), append([]byte{kind}, m.ID...)); err != nil {
		return err
	}
	return ids.Put([]byte(m.ID), append(u64(cursor), with...))
}

// Conversations returns a page of a user's conversations, newest first.
func (d *Store) Conversations(ctx context.Context, username string, before uint64, limit int) ([]fednode.Conversation, error) {
	var out []fednode.Conversation
	var last []fednode.Message
	user := fednode.CanonicalUsername(username)
	err := d.view("conversations", func(tx *bbolt.Tx) error {
		order, _ := userBucket(tx, bConvOrder, user, false)
		if order == nil {
			return nil
		}
		convs, _ := userBucket(tx, bConversations, user, false)
		c := order.Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			c.Seek(u64(before))
			k, v = c.Prev()
		}
		mb, msgs := tx.Bucket(bMailboxes).Bucket([]byte(user)), tx.Bucket(bMessages)
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			var rec convRecord
			if err := get(convs, v, &rec); err != nil {
				if errors.Is(err, fednode.ErrNotFound) {
					return corrupt("conversation order entry %x names conversation %q, which is not stored", k, keyString(v))
				}
				return err
			}
			var m fednode.Message
			if id := mailboxID(mb, rec.LastCursor); id == nil {
				return corrupt("conversation %q ends at cursor %d, which its mailbox does not hold", keyString(v), rec.LastCursor)
			} else if err := get(msgs, id, &m); err != nil && !errors.Is(err, fednode.ErrNotFound) {
				return fmt.Errorf("conversation %q: last message: %w", keyString(v), err)
			}
			out = append(out, rec.Conversation)
			last = append(last, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The preview is never stored: it is the start of the last message,
	// which is sealed at rest.
	for i := range out {
		m, err := d.open(ctx, "conversations", last[i])
		if err != nil {
			return nil, err
		}
		out[i].LastPreview, out[i].LastE2E = fednode.Preview(m.Content), m.E2E != nil
	}
	return out, nil
}

// mailboxID returns the message id at a cursor of a mailbox, nil if none.
func mailboxID(mb *bbolt.Bucket, cursor uint64) []byte {
	if mb == nil {
		return nil
	}
	return mb.Get(u64(cursor))
}

// ConversationMessages returns a page of one conversation, newest first.
func (d *Store) ConversationMessages(ctx context.Context, username, with string, before uint64, limit int) ([]fednode.Entry, error) {
	var out []fednode.Entry
	user := fednode.CanonicalUsername(username)
	err := d.view("conversation messages", func(tx *bbolt.Tx) error {
		cmsgs, _ := userBucket(tx, bConvMessages, user, false)
		if cmsgs == nil {
			return nil
		}
		msgs := tx.Bucket(bMessages)
		prefix := append([]byte(with), 0)
		c := cmsgs.Cursor()
		var k, v []byte
		if before == 0 {
			c.Seek(append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		} else {
			c.Seek(convMessageKey(with, before))
		}
		for k, v = c.Prev(); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Prev() {
			if len(k) != len(prefix)+8 || len(v) < 2 {
				return corrupt("conversation entry %q is malformed", keyString(k))
			}
			var m fednode.Message
			if err := get(msgs, v[1:], &m); err != nil {
				if errors.Is(err, fednode.ErrNotFound) {
					return corrupt("conversation entry %q points to message %q, which is not stored", keyString(k), keyString(v[1:]))
				}
				return err
			}
			out = append(out, fednode.Entry{Cursor: binary.BigEndian.Uint64(k[len(prefix):]), Message: m})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := d.openEntries(ctx, "conversation messages", out); err != nil {
		return nil, err
	}
	return out, nil
}

// MarkConversationRead moves a conversation's read mark up to cursor and
// counts again what is unread after it.
func (d *Store) MarkConversationRead(ctx context.Context, username, with string, cursor uint64) error {
	user := fednode.CanonicalUsername(username)
	return d.update("mark conversation read", func(tx *bbolt.Tx) error {
		convs, _ := userBucket(tx, bConversations, user, false)
		if convs == nil {
			return fednode.ErrNotFound
		}
		var rec convRecord
		if err := get(convs, []byte(with), &rec); err != nil {
			return err
		}
		if cursor <= rec.Read {
			return nil
		}
		rec.Read = cursor
		cmsgs, _ := userBucket(tx, bConvMessages, user, false)
		rec.Unread = countReceived(cmsgs, with, cursor)
		return put(convs, []byte(with), rec)
	})
}

// countReceived counts the received messages of a conversation after a
// cursor: the messages after the read mark, not the whole conversation.
func countReceived(cmsgs *bbolt.Bucket, with string, after uint64) int {
	if cmsgs == nil {
		return 0
	}
	prefix := append([]byte(with), 0)
	n := 0
	c := cmsgs.Cursor()
	for k, v := c.Seek(convMessageKey(with, after+1)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) > 0 && v[0] == kindReceived {
			n++
		}
	}
	return n
}

// DeleteMailboxMessage removes a message from a user's mailbox and
// conversation index, and deletes it when nobody else holds it, in one
// transaction.
func (d *Store) DeleteMailboxMessage(ctx context.Context, username, id, domain string) error {
	user := fednode.CanonicalUsername(username)
	return d.update("delete message "+id, func(tx *bbolt.Tx) error {
		ids, _ := userBucket(tx, bMailboxIDs, user, false)
		if ids == nil {
			return fednode.ErrNotFound
		}
		v := ids.Get([]byte(id))
		if len(v) < 8 {
			return fednode.ErrNotFound
		}
		cursor, with := binary.BigEndian.Uint64(v[:8]), string(v[8:])
		if err := ids.Delete([]byte(id)); err != nil {
			return err
		}
		if mb := tx.Bucket(bMailboxes).Bucket([]byte(user)); mb != nil {
			if err := mb.Delete(u64(cursor)); err != nil {
				return err
			}
		}
		if err := unindexConversation(tx, user, with, cursor); err != nil {
			return err
		}
		msgs := tx.Bucket(bMessages)
		var m fednode.Message
		if err := get(msgs, []byte(id), &m); err != nil {
			if errors.Is(err, fednode.ErrNotFound) {
				return nil
			}
			return err
		}
		holds := func(other string) bool { // in another mailbox of this node
			b, _ := userBucket(tx, bMailboxIDs, other, false)
			return b != nil && b.Get([]byte(id)) != nil
		}
		if !fednode.HeldOnlyBy(m, user, domain, holds) {
			return nil
		}
		if err := msgs.Delete([]byte(id)); err != nil {
			return err
		}
		return d.deleteDeadLetters(tx, []byte(id))
	})
}

// unindexConversation removes the entry at cursor from a conversation,
// and moves the conversation's last message back to the one before it, or
// drops the conversation when none is left.
func unindexConversation(tx *bbolt.Tx, user, with string, cursor uint64) error {
	cmsgs, _ := userBucket(tx, bConvMessages, user, false)
	convs, _ := userBucket(tx, bConversations, user, false)
	order, _ := userBucket(tx, bConvOrder, user, false)
	if cmsgs == nil || convs == nil || order == nil {
		return corrupt("mailbox_ids of %q names a message with no conversation index", user)
	}
	key := convMessageKey(with, cursor)
	v := cmsgs.Get(key)
	if v == nil {
		return corrupt("conversation %q of %q has no entry at %d", with, user, cursor)
	}
	kind := v[0]
	if err := cmsgs.Delete(key); err != nil {
		return err
	}
	var rec convRecord
	if err := get(convs, []byte(with), &rec); err != nil {
		return err
	}
	if kind == kindReceived && cursor > rec.Read && rec.Unread > 0 {
		rec.Unread--
	}
	if rec.LastCursor != cursor {
		return put(convs, []byte(with), rec)
	}
	if err := order.Delete(u64(cursor)); err != nil {
		return err
	}
	prefix := append([]byte(with), 0)
	c := cmsgs.Cursor()
	c.Seek(key)
	k, pv := c.Prev()
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return convs.Delete([]byte(with))
	}
	var prev fednode.Message
	if err := get(tx.Bucket(bMessages), pv[1:], &prev); err != nil {
		return fmt.Errorf("conversation %q: %w", with, err)
	}
	rec.LastCursor = binary.BigEndian.Uint64(k[len(prefix):])
	rec.LastAt, rec.LastPreview, rec.LastFromMe = prev.CreatedAt, "", pv[0] == kindSent
	if err := order.Put(u64(rec.LastCursor), []byte(with)); err != nil {
		return err
	}
	return put(convs, []byte(with), rec)
}

// indexMailboxes builds the conversation index of every mailbox, for a
// store written before it existed (schema 1 → 2), in the upgrade's one
// transaction.
func indexMailboxes(tx *bbolt.Tx) error {
	for _, top := range userIndexBuckets {
		if _, err := tx.CreateBucketIfNotExists(top); err != nil {
			return err
		}
	}
	mbs, msgs := tx.Bucket(bMailboxes), tx.Bucket(bMessages)
	if mbs == nil || msgs == nil {
		return nil
	}
	return mbs.ForEachBucket(func(owner []byte) error {
		user := string(owner)
		return mbs.Bucket(owner).ForEach(func(k, id []byte) error {
			var m fednode.Message
			if err := get(msgs, id, &m); err != nil {
				if errors.Is(err, fednode.ErrNotFound) {
					return nil
				}
				return err
			}
			return indexConversation(tx, m, user, binary.BigEndian.Uint64(k), fednode.SentCopy(m, user))
		})
	})
}
