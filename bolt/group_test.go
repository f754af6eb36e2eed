package bolt

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// txid is the id of the last committed write transaction: it grows by one
// with each commit, so the difference between two reads counts commits.
func txid(t *testing.T, d *Store) int {
	t.Helper()
	tx, err := d.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	return tx.ID()
}

func inbound(id, to string) fednode.Message {
	return fednode.Message{ID: id, From: fednode.Address{User: "alice", Domain: "a.example"}, To: fednode.Address{User: to, Domain: "b.example"},
		Content: id, Tags: []string{}, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Status: fednode.StatusDelivered}
}

// TestAppendMessagesIsOneCommit: a set of appends is committed in one
// transaction, each with its own outcome in the order given; a duplicate
// among them (stored before, or given twice) is refused alone and changes
// nothing else.
func TestAppendMessagesIsOneCommit(t *testing.T) {
	ctx := context.Background()
	d, _ := openLogged(t)
	if _, err := d.AppendMessage(ctx, inbound("old", "bob"), "bob"); err != nil {
		t.Fatal(err)
	}
	var msgs []fednode.Message
	var boxes [][]string
	for i := range 12 {
		id := fmt.Sprintf("m%02d", i)
		switch i {
		case 4:
			id = "old" // stored before
		case 9:
			id = "m02" // given twice
		}
		to := []string{"bob", "carol"}[i%2]
		msgs, boxes = append(msgs, inbound(id, to)), append(boxes, []string{to})
	}
	before := txid(t, d)
	cursors, errs := d.AppendMessages(ctx, msgs, boxes)
	if n := txid(t, d) - before; n != 1 {
		t.Fatalf("12 appends took %d commits, want 1", n)
	}
	next := map[string]uint64{"bob": 2, "carol": 1} // bob holds "old" at 1
	for i, m := range msgs {
		if i == 4 || i == 9 {
			if !errors.Is(errs[i], fednode.ErrDuplicate) || cursors[i] != nil {
				t.Fatalf("append %d (%s): %v %v, want a duplicate", i, m.ID, cursors[i], errs[i])
			}
			continue
		}
		box := boxes[i][0]
		if errs[i] != nil || !reflect.DeepEqual(cursors[i], []uint64{next[box]}) {
			t.Fatalf("append %d (%s): %v %v, want cursor %d in %s", i, m.ID, cursors[i], errs[i], next[box], box)
		}
		next[box]++
	}
	if got, _ := d.Message(ctx, "old"); got.To.User != "bob" || got.Content != "old" {
		t.Fatalf("the message stored before was changed: %+v", got)
	}
	if got, _ := d.Message(ctx, "m02"); got.To.User != "bob" {
		t.Fatalf("m02 must be the first one given: %+v", got)
	}
	if box, _ := d.Mailbox(ctx, "carol", 0, 100); len(box) != 5 {
		t.Fatalf("carol's mailbox holds %d messages, want 5", len(box))
	}
}

// TestAppendMessagesIsNeverSplit: a set larger than the committer's group
// bound is still one transaction.
func TestAppendMessagesIsNeverSplit(t *testing.T) {
	ctx := context.Background()
	d, _ := openLogged(t)
	var msgs []fednode.Message
	var boxes [][]string
	for i := range maxGroup + 44 {
		msgs, boxes = append(msgs, inbound(fmt.Sprintf("m%03d", i), "bob")), append(boxes, []string{"bob"})
	}
	before := txid(t, d)
	if _, errs := d.AppendMessages(ctx, msgs, boxes); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if n := txid(t, d) - before; n != 1 {
		t.Fatalf("%d appends took %d commits, want 1", len(msgs), n)
	}
}

// TestAppendMessagesAfterClose refuses every message, naming each.
func TestAppendMessagesAfterClose(t *testing.T) {
	d, _ := openLogged(t)
	d.Close()
	_, errs := d.AppendMessages(context.Background(), []fednode.Message{inbound("a", "bob"), inbound("b", "bob")}, [][]string{{"bob"}, {"bob"}})
	for i, id := range []string{"a", "b"} {
		if errs[i] == nil || errs[i].Error() != "bolt: append message "+id+": store closed" {
			t.Fatalf("append %s after Close: %v", id, errs[i])
		}
	}
}
