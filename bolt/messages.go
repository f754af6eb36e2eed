package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// appendReq is one AppendMessage call waiting for the group committer.
type appendReq struct {
	m         fednode.Message // the record as stored: sealed (only its content and tags differ)
	mailboxes []string
	job       bool // also enqueue m for delivery to m.To.Domain
	cursors   []uint64
	err       error
	done      chan struct{}
}

// maxGroup bounds how many appends share one transaction (a set handed
// over together by AppendMessages is never split).
const maxGroup = 256

// committer is the group commit loop: it takes the first waiting set of
// appends, every other set already queued behind it (up to maxGroup
// appends), and commits them in one fsynced transaction. A lone writer is
// committed at once, with no timer to wait out; under load, the appends
// that arrive during one fsync share the next. It never dies: a panic
// inside a group fails the store (see health) and every later append is
// refused at once, so no appender waits forever and the process does not
// crash on every restart.
func (d *Store) committer() {
	defer close(d.committerDone)
	for first := range d.appends {
		group := first
	drain:
		for len(group) < maxGroup {
			select {
			case set, ok := <-d.appends:
				if !ok {
					break drain
				}
				group = append(group, set...)
			default:
				break drain
			}
		}
		err := d.write("append messages", func(tx *bbolt.Tx) error {
			for _, r := range group {
				r.cursors, r.err = appendOne(tx, r.m, r.mailboxes, r.job)
				if r.err != nil && !errors.Is(r.err, fednode.ErrDuplicate) {
					return r.err // a storage failure fails the whole group
				}
			}
			return nil
		})
		for _, r := range group {
			if err != nil {
				r.cursors, r.err = nil, err
			}
			if r.job && r.err == nil {
				d.queue.add(r.m.To.Domain, 1, 0)
			}
			close(r.done)
		}
	}
}

// appendOne writes one message record (as stored: sealed) inside tx, and
// its outbox job when job is set. Its mailbox, conversation and job entries
// read only its id, addresses and time. A duplicate id writes nothing.
func appendOne(tx *bbolt.Tx, m fednode.Message, mailboxes []string, job bool) ([]uint64, error) {
	msgs := tx.Bucket(bMessages)
	if msgs.Get([]byte(m.ID)) != nil {
		return nil, fednode.ErrDuplicate
	}
	if err := put(msgs, []byte(m.ID), m); err != nil {
		return nil, err
	}
	cursors := make([]uint64, len(mailboxes))
	done := map[string]uint64{}
	for i, name := range mailboxes {
		name = fednode.CanonicalUsername(name)
		if c, ok := done[name]; ok {
			cursors[i] = c
			continue
		}
		mb, err := tx.Bucket(bMailboxes).CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return nil, err
		}
		seq, err := mb.NextSequence()
		if err != nil {
			return nil, err
		}
		if err := mb.Put(u64(seq), []byte(m.ID)); err != nil {
			return nil, err
		}
		if err := indexConversation(tx, m, name, seq, job); err != nil {
			return nil, err
		}
		cursors[i], done[name] = seq, seq
	}
	if job {
		if err := enqueueJob(tx, m, m.CreatedAt); err != nil {
			return nil, err
		}
	}
	return cursors, nil
}

// enqueueJob queues m's delivery job at the tail of its peer's queue, and
// indexes it by message id, inside tx.
func enqueueJob(tx *bbolt.Tx, m fednode.Message, enqueuedAt time.Time) error {
	q, err := tx.Bucket(bOutbox).CreateBucketIfNotExists([]byte(m.To.Domain))
	if err != nil {
		return err
	}
	seq, err := q.NextSequence()
	if err != nil {
		return err
	}
	j := fednode.Job{Seq: seq, Peer: m.To.Domain, MessageID: m.ID, Pair: m.From.String() + "|" + m.To.String(), EnqueuedAt: enqueuedAt}
	if err := put(q, u64(seq), j); err != nil {
		return err
	}
	return tx.Bucket(bOutboxIndex).Put([]byte(m.ID), u64(seq))
}

// AppendMessage stores m and appends it to each named mailbox (a name given
// twice is appended once) in one fsynced transaction, shared with whatever
// other appends are waiting (group commit). It returns the cursor m got in
// each mailbox, in the order the names were given. A message whose id is
// already stored is refused with fednode.ErrDuplicate and changes nothing.
func (d *Store) AppendMessage(ctx context.Context, m fednode.Message, mailboxes ...string) (_ []uint64, err error) {
	defer wrap(&err, "append message "+m.ID)
	stored, err := d.seal(ctx, m)
	if err != nil {
		return nil, err
	}
	return d.append(&appendReq{m: stored, mailboxes: mailboxes, done: make(chan struct{})})
}

// AppendOutgoing stores m (addressed to another node), appends it to the
// sender's mailbox and enqueues its delivery job for m.To.Domain, all in one
// fsynced transaction: a message is never accepted without its job, nor a
// job without its message.
func (d *Store) AppendOutgoing(ctx context.Context, m fednode.Message, senderMailbox string) (_ uint64, err error) {
	defer wrap(&err, "append outgoing message "+m.ID)
	stored, err := d.seal(ctx, m)
	if err != nil {
		return 0, err
	}
	c, err := d.append(&appendReq{m: stored, mailboxes: []string{senderMailbox}, job: true, done: make(chan struct{})})
	if err != nil {
		return 0, err
	}
	return c[0], nil
}

// AppendMessages stores each of msgs as AppendMessage would, appending
// msgs[i] to mailboxes[i], all in one fsynced transaction (shared with
// whatever other appends are waiting): a receiver storing an envelope
// pays one fsync for it, not one a message. Each message has its own
// outcome, in the order given: its cursors as AppendMessage returns them,
// or its error. A message whose id is already stored, or given twice, is
// refused with fednode.ErrDuplicate and changes nothing else; a storage
// failure fails them all.
func (d *Store) AppendMessages(ctx context.Context, msgs []fednode.Message, mailboxes [][]string) ([][]uint64, []error) {
	cursors, errs := make([][]uint64, len(msgs)), make([]error, len(msgs))
	if len(mailboxes) != len(msgs) {
		for i, m := range msgs {
			errs[i] = fmt.Errorf("bolt: append message %s: %d messages, %d lists of mailboxes", m.ID, len(msgs), len(mailboxes))
		}
		return cursors, errs
	}
	set := make([]*appendReq, len(msgs))
	for i, m := range msgs {
		stored, err := d.seal(ctx, m)
		if err != nil {
			for j, m := range msgs {
				errs[j] = fmt.Errorf("bolt: append message %s: %w", m.ID, err)
			}
			return cursors, errs
		}
		set[i] = &appendReq{m: stored, mailboxes: mailboxes[i], done: make(chan struct{})}
	}
	if err := d.enqueue(set); err != nil {
		for i, m := range msgs {
			errs[i] = fmt.Errorf("bolt: append message %s: %w", m.ID, err)
		}
		return cursors, errs
	}
	for i, r := range set {
		<-r.done
		if r.err != nil {
			errs[i] = fmt.Errorf("bolt: append message %s: %w", r.m.ID, r.err)
			continue
		}
		cursors[i] = r.cursors
	}
	return cursors, errs
}

// append hands r to the group committer and waits for its outcome.
func (d *Store) append(r *appendReq) ([]uint64, error) {
	if err := d.enqueue([]*appendReq{r}); err != nil {
		return nil, err
	}
	<-r.done // once queued, the write happens; do not abandon it halfway
	if r.err != nil {
		return nil, r.err
	}
	return r.cursors, nil
}

// enqueue hands a set of appends to the group committer, which commits
// them in one transaction.
func (d *Store) enqueue(set []*appendReq) error {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return errors.New("store closed")
	}
	d.appends <- set
	return nil
}

// Message returns the stored message with that id.
func (d *Store) Message(ctx context.Context, id string) (fednode.Message, error) {
	var m fednode.Message
	err := d.view("message", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bMessages), []byte(id), &m)
	})
	if err != nil {
		return m, err
	}
	return d.open(ctx, "message", m)
}

// Messages returns every stored message among ids, keyed by id, read in
// one transaction. Ids not stored are absent.
func (d *Store) Messages(ctx context.Context, ids []string) (map[string]fednode.Message, error) {
	out := make(map[string]fednode.Message, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err := d.view("messages", func(tx *bbolt.Tx) error {
		msgs := tx.Bucket(bMessages)
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			var m fednode.Message
			switch err := get(msgs, []byte(id), &m); {
			case errors.Is(err, fednode.ErrNotFound):
			case err != nil:
				return err
			default:
				out[id] = m
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, m := range out {
		if out[id], err = d.open(ctx, "messages", m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Mailbox returns up to limit entries of one mailbox with cursors greater
// than after, oldest first.
func (d *Store) Mailbox(ctx context.Context, username string, after uint64, limit int) ([]fednode.Entry, error) {
	var out []fednode.Entry
	err := d.view("mailbox", func(tx *bbolt.Tx) error {
		mb := tx.Bucket(bMailboxes).Bucket([]byte(fednode.CanonicalUsername(username)))
		if mb == nil {
			return nil
		}
		msgs := tx.Bucket(bMessages)
		c := mb.Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var m fednode.Message
			if err := get(msgs, v, &m); err != nil {
				if errors.Is(err, fednode.ErrNotFound) { // AppendMessage writes both in one transaction
					return corrupt("mailbox entry %x points to message %q, which is not stored", k, keyString(v))
				}
				return fmt.Errorf("mailbox entry %x: %w", k, err)
			}
			out = append(out, fednode.Entry{Cursor: binary.BigEndian.Uint64(k), Message: m})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := d.openEntries(ctx, "mailbox", out); err != nil {
		return nil, err
	}
	return out, nil
}

// MailboxHead returns the newest cursor of a mailbox, 0 when it is empty.
func (d *Store) MailboxHead(ctx context.Context, username string) (uint64, error) {
	var head uint64
	err := d.view("mailbox head", func(tx *bbolt.Tx) error {
		if mb := tx.Bucket(bMailboxes).Bucket([]byte(fednode.CanonicalUsername(username))); mb != nil {
			head = mb.Sequence()
		}
		return nil
	})
	return head, err
}
