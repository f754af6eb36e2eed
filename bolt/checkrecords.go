package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// keyString shows a key the way the operator would recognise it: as text
// when it is printable, else in hex.
func keyString(k []byte) string {
	s := string(k)
	printable := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			printable = false
			break
		}
	}
	if !printable {
		s = fmt.Sprintf("%x", k)
	}
	if len(s) > maxKeyInReport {
		s = s[:maxKeyInReport] + "…"
	}
	return s
}

type kvStringer struct{}

func (kvStringer) KeyToString(k []byte) string { return strconv.Quote(keyString(k)) }

func (kvStringer) ValueToString(v []byte) string { return strconv.Quote(keyString(v)) }

// recordBuckets are the top-level buckets, in the order a report lists them.
var recordBuckets = []string{"users", "sessions", "user_sessions", "messages", "mailboxes", "login_failures", "outbox", "outbox_index", "dead_letters", "bans", "peer_documents", "meta", "invites", "deleted_users", "conversations", "conversation_order", "conversation_messages", "mailbox_ids", "blocks", "user_keys"}

// recordScope is how many records a check decodes.
type recordScope int

const (
	noRecords    recordScope = iota
	smallRecords             // all but messages and mailboxes, which grow with every message
	allRecords
)

// checkTx runs bbolt's own consistency check on tx, then decodes the
// records in scope and checks the links between them. Decoding every
// record costs several times more than the rest (see
// DefaultFullCheckMaxBytes); messages and mailboxes are most of it, and a
// damaged one is still found when read (a mailbox entry whose message does
// not decode or is gone fails the store). Call it only on a file that
// inspect found sound (see the top of this file), and with no writer
// running: bbolt's check reads the freelist that writers change. When ctx
// ends it stops decoding; the caller must not take the report as whole.
func checkTx(ctx context.Context, tx *bbolt.Tx, rep *Report, scope recordScope) {
	for err := range tx.Check(bbolt.WithKVStringer(kvStringer{})) {
		rep.add("bbolt's check: %v", err)
	}
	if len(rep.Problems) > 0 || scope == noRecords {
		return // records on a damaged tree prove nothing more
	}
	rep.Records = map[string]int{}
	known := map[string]bool{}
	for _, n := range recordBuckets {
		known[n] = true
	}
	tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		if !known[string(name)] {
			rep.add("an unknown top-level bucket %q: a damaged name, or a store of another program", keyString(name))
		}
		return nil
	})
	msgs := tx.Bucket(bMessages)
	hasMessage := func(id []byte) bool { return msgs != nil && msgs.Get(id) != nil }
	records(ctx, tx, rep, bUsers, func(k, v []byte) error {
		var u fednode.User
		if err := undecodable(v, &u); err != nil {
			return err
		}
		if fednode.CanonicalUsername(u.Username) != string(k) {
			return fmt.Errorf("holds user %q", u.Username)
		}
		return nil
	})
	records(ctx, tx, rep, bSessions, func(k, v []byte) error {
		var s fednode.Session
		if err := undecodable(v, &s); err != nil {
			return err
		}
		if s.ID != string(k) {
			return fmt.Errorf("holds session %q", s.ID)
		}
		return nil
	})
	nested(ctx, tx, rep, bUserSessions, func(_ *bbolt.Bucket, k, v []byte) error {
		if len(k) < 8 || len(v) != 0 {
			return errors.New("is not a session index entry")
		}
		return nil
	})
	if scope == allRecords {
		records(ctx, tx, rep, bMessages, func(k, v []byte) error {
			var m fednode.Message
			if err := undecodable(v, &m); err != nil {
				return err
			}
			if m.ID != string(k) {
				return fmt.Errorf("holds message %q", m.ID)
			}
			return nil
		})
		nested(ctx, tx, rep, bMailboxes, func(b *bbolt.Bucket, k, v []byte) error {
			if len(k) != 8 || binary.BigEndian.Uint64(k) > b.Sequence() {
				return fmt.Errorf("is not a cursor at or below the mailbox's sequence %d", b.Sequence())
			}
			if !hasMessage(v) {
				return fmt.Errorf("points to message %q, which is not stored", keyString(v))
			}
			return nil
		})
	}
	records(ctx, tx, rep, bFailures, func(_, v []byte) error { var ns []int64; return undecodable(v, &ns) })
	nested(ctx, tx, rep, bOutbox, func(b *bbolt.Bucket, k, v []byte) error {
		var j fednode.Job
		if err := undecodable(v, &j); err != nil {
			return err
		}
		if len(k) != 8 || binary.BigEndian.Uint64(k) != j.Seq || j.Seq > b.Sequence() {
			return fmt.Errorf("holds job %d (queue sequence %d)", j.Seq, b.Sequence())
		}
		if !hasMessage([]byte(j.MessageID)) {
			return fmt.Errorf("is the job of message %q, which is not stored", j.MessageID)
		}
		return nil
	})
	records(ctx, tx, rep, bOutboxIndex, func(k, v []byte) error {
		if len(v) != 8 || !hasMessage(k) {
			return fmt.Errorf("indexes the job of message %q, which is not stored", keyString(k))
		}
		return nil
	})
	records(ctx, tx, rep, bDead, func(k, v []byte) error {
		var d fednode.DeadLetter
		if err := undecodable(v, &d); err != nil {
			return err
		}
		if d.MessageID != string(k) {
			return fmt.Errorf("holds the dead letter of %q", d.MessageID)
		}
		return nil
	})
	records(ctx, tx, rep, bBans, func(k, v []byte) error {
		var b fednode.Ban
		if err := undecodable(v, &b); err != nil {
			return err
		}
		if b.Key != string(k) {
			return fmt.Errorf("holds the ban of %q", b.Key)
		}
		return nil
	})
	records(ctx, tx, rep, bPeers, func(_, v []byte) error { var p peerDoc; return undecodable(v, &p) })
	records(ctx, tx, rep, bMeta, func(_, _ []byte) error { return nil })
	records(ctx, tx, rep, bInvites, func(k, v []byte) error {
		var inv fednode.Invite
		if err := undecodable(v, &inv); err != nil {
			return err
		}
		if inv.Code != string(k) {
			return fmt.Errorf("holds the invite %q", inv.Code)
		}
		return nil
	})
	nested(ctx, tx, rep, bConversations, func(_ *bbolt.Bucket, k, v []byte) error {
		var c convRecord
		if err := undecodable(v, &c); err != nil {
			return err
		}
		if c.With != string(k) {
			return fmt.Errorf("holds the conversation with %q", c.With)
		}
		return nil
	})
	nested(ctx, tx, rep, bConvOrder, func(_ *bbolt.Bucket, k, _ []byte) error {
		if len(k) != 8 {
			return errors.New("is not a cursor")
		}
		return nil
	})
	nested(ctx, tx, rep, bBlocks, func(_ *bbolt.Bucket, _, v []byte) error { var b fednode.Block; return undecodable(v, &b) })
	records(ctx, tx, rep, bUserKeys, func(_, v []byte) error { var k fednode.StoredUserKeys; return undecodable(v, &k) })
	if scope == allRecords {
		nested(ctx, tx, rep, bConvMessages, func(_ *bbolt.Bucket, k, v []byte) error {
			if len(k) < 9 || len(v) < 2 || !hasMessage(v[1:]) {
				return errors.New("is not an entry of a stored message")
			}
			return nil
		})
		nested(ctx, tx, rep, bMailboxIDs, func(_ *bbolt.Bucket, k, v []byte) error {
			if len(v) < 9 || !hasMessage(k) {
				return errors.New("is not a mailbox entry of a stored message")
			}
			return nil
		})
	}
	records(ctx, tx, rep, bDeleted, func(k, v []byte) error {
		var u fednode.DeletedUser
		if err := undecodable(v, &u); err != nil {
			return err
		}
		if fednode.CanonicalUsername(u.Username) != string(k) {
			return fmt.Errorf("holds deleted user %q", u.Username)
		}
		return nil
	})
}

// undecodable is json.Unmarshal worded for a report.
func undecodable(v []byte, x any) error {
	if err := json.Unmarshal(v, x); err != nil {
		return fmt.Errorf("does not decode: %v", err)
	}
	return nil
}

// records checks each key/value of a top-level bucket with fn.
func records(ctx context.Context, tx *bbolt.Tx, rep *Report, name []byte, fn func(k, v []byte) error) {
	b := tx.Bucket(name)
	if b == nil {
		return // created at the next open; a missing name is caught above
	}
	n := 0
	b.ForEach(func(k, v []byte) error {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if v == nil {
			rep.add("%s: %q is a bucket where a record belongs", name, keyString(k))
		} else if err := fn(k, v); err != nil {
			rep.add("%s: the record %q %v", name, keyString(k), err)
		}
		return nil
	})
	rep.Records[string(name)] = n
}

// nested checks the records of each bucket inside a top-level bucket.
func nested(ctx context.Context, tx *bbolt.Tx, rep *Report, name []byte, fn func(b *bbolt.Bucket, k, v []byte) error) {
	top := tx.Bucket(name)
	if top == nil {
		return
	}
	n := 0
	top.ForEach(func(k, v []byte) error {
		b := top.Bucket(k)
		if b == nil {
			rep.add("%s: %q is a record where a bucket belongs", name, keyString(k))
			return nil
		}
		return b.ForEach(func(k2, v2 []byte) error {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := fn(b, k2, v2); err != nil {
				rep.add("%s/%s: the entry %s %v", name, keyString(k), keyString(k2), err)
			}
			return nil
		})
	})
	rep.Records[string(name)] = n
}
