package storetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// withs are the With of each conversation, in the order given.
func withs(cs []fednode.Conversation) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.With
	}
	return out
}

func entryIDs(es []fednode.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Message.ID
	}
	return out
}

func conversation(t *testing.T, s fednode.Store, user, with string) fednode.Conversation {
	t.Helper()
	cs, err := s.Conversations(context.Background(), user, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.With == with {
			return c
		}
	}
	t.Fatalf("%s has no conversation with %s in %v", user, with, withs(cs))
	return fednode.Conversation{}
}

func testConversations(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	long := msg("m1", "alice", "Bob")
	long.Content = strings.Repeat("é", 100)
	s.AppendMessage(ctx, long, "alice", "bob")                      // alice 1, bob 1
	s.AppendMessage(ctx, msg("m2", "bob", "alice"), "bob", "alice") // bob 2, alice 2
	s.AppendMessage(ctx, msg("m3", "alice", "alice"), "alice")      // alice 3: to herself
	in := msg("m4", "bob", "alice")                                 // bob@b.example, not our bob
	in.From.Domain = "B.example"
	in.CreatedAt = t0.Add(time.Minute)
	s.AppendMessage(ctx, in, "alice")                               // alice 4
	s.AppendOutgoing(ctx, remote("m5", "alice", "carol"), "alice")  // alice 5
	s.AppendMessage(ctx, msg("m6", "bob", "alice"), "bob", "alice") // bob 3, alice 6
	s.AppendOutgoing(ctx, remote("m7", "alice", "alice"), "alice")  // alice 7: to alice@b.example

	all, err := s.Conversations(ctx, "ALICE", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alice@b.example", "bob@a.example", "carol@b.example", "bob@b.example", "alice@a.example"}
	if !reflect.DeepEqual(withs(all), want) {
		t.Fatalf("Conversations = %v; want newest first %v", withs(all), want)
	}
	page, err := s.Conversations(ctx, "alice", 6, 2)
	if err != nil || !reflect.DeepEqual(withs(page), want[2:4]) {
		t.Fatalf("Conversations before 6, limit 2 = %v, %v; want %v", withs(page), err, want[2:4])
	}
	bob := all[1]
	if bob.LastCursor != 6 || bob.LastFromMe || bob.Unread != 2 || bob.LastPreview != "hello m6" || !bob.LastAt.Equal(t0) {
		t.Fatalf("conversation with bob = %+v; want last 6 from bob, 2 unread", bob)
	}
	if c := all[3]; c.Unread != 1 || !c.LastAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("conversation with bob@b.example = %+v", c)
	}
	if c := all[0]; !c.LastFromMe || c.Unread != 0 {
		t.Fatalf("alice's sent copy to alice@b.example = %+v; want from her, not unread", c)
	}
	if c := all[4]; !c.LastFromMe || c.Unread != 0 || c.LastCursor != 3 {
		t.Fatalf("to herself = %+v; want from her, not unread", c)
	}
	if c := conversation(t, s, "bob", "alice@a.example"); c.LastCursor != 3 || !c.LastFromMe || c.Unread != 1 {
		t.Fatalf("bob's conversation with alice = %+v", c)
	}
	if c := conversation(t, s, "bob", "alice@a.example"); c.Unread != 1 {
		t.Fatalf("bob's unread = %d", c.Unread)
	}
	if p := conversation(t, s, "bob", "alice@a.example"); p.LastPreview != "hello m6" {
		t.Fatalf("preview %q", p.LastPreview)
	}
	first, _ := s.ConversationMessages(ctx, "bob", "alice@a.example", 3, 10)
	if got := entryIDs(first); !reflect.DeepEqual(got, []string{"m2", "m1"}) {
		t.Fatalf("bob's older messages with alice = %v", got)
	}
	if got := []rune(first[1].Message.Content); len(got) != 100 {
		t.Fatal("the message keeps its whole content")
	}
	if c := conversation(t, s, "alice", "bob@a.example"); c.Unread != 2 {
		t.Fatal(c)
	}
	// The preview is the first 80 characters.
	s.AppendMessage(ctx, long2(), "dave", "erin")
	if c := conversation(t, s, "erin", "dave@a.example"); len([]rune(c.LastPreview)) != fednode.PreviewChars {
		t.Fatalf("preview of %d characters", len([]rune(c.LastPreview)))
	}

	es, err := s.ConversationMessages(ctx, "alice", "bob@a.example", 0, 10)
	if err != nil || !reflect.DeepEqual(entryIDs(es), []string{"m6", "m2", "m1"}) || es[0].Cursor != 6 {
		t.Fatalf("ConversationMessages = %v, %v; want m6 m2 m1 newest first", entryIDs(es), err)
	}
	es, _ = s.ConversationMessages(ctx, "alice", "bob@a.example", 6, 1)
	if !reflect.DeepEqual(entryIDs(es), []string{"m2"}) {
		t.Fatalf("before 6, limit 1 = %v; want m2", entryIDs(es))
	}
	if es, err := s.ConversationMessages(ctx, "alice", "nobody@a.example", 0, 10); err != nil || len(es) != 0 {
		t.Fatalf("an unknown conversation = %v, %v; want none", es, err)
	}
	if cs, err := s.Conversations(ctx, "nobody", 0, 10); err != nil || len(cs) != 0 {
		t.Fatalf("a user with no mailbox = %v, %v", cs, err)
	}

	if err := s.MarkConversationRead(ctx, "alice", "bob@a.example", 2); err != nil {
		t.Fatal(err)
	}
	if c := conversation(t, s, "alice", "bob@a.example"); c.Unread != 1 {
		t.Fatalf("read up to 2: unread %d; want 1 (m6)", c.Unread)
	}
	s.MarkConversationRead(ctx, "alice", "bob@a.example", 1) // never back
	if c := conversation(t, s, "alice", "bob@a.example"); c.Unread != 1 {
		t.Fatalf("a read mark moved back: unread %d", c.Unread)
	}
	s.AppendMessage(ctx, msg("m8", "bob", "alice"), "bob", "alice") // alice 8
	if c := conversation(t, s, "alice", "bob@a.example"); c.Unread != 2 {
		t.Fatalf("after a new message: unread %d; want 2", c.Unread)
	}
	s.MarkConversationRead(ctx, "alice", "bob@a.example", 8)
	if c := conversation(t, s, "alice", "bob@a.example"); c.Unread != 0 {
		t.Fatalf("all read: unread %d", c.Unread)
	}
	if err := s.MarkConversationRead(ctx, "alice", "nobody@a.example", 8); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("read of an unknown conversation: %v; want ErrNotFound", err)
	}
}

func long2() fednode.Message {
	m := msg("long", "dave", "erin")
	m.Content = strings.Repeat("x", 81)
	return m
}

func testDeleteMailboxMessage(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	for _, n := range []string{"alice", "bob"} {
		s.CreateUser(ctx, fednode.User{Username: n, Role: fednode.RoleUser, CreatedAt: t0})
	}
	s.AppendMessage(ctx, msg("m1", "alice", "bob"), "alice", "bob") // 1 1
	s.AppendMessage(ctx, msg("m2", "bob", "alice"), "bob", "alice") // 2 2
	s.AppendMessage(ctx, msg("m3", "alice", "alice"), "alice")      // 3
	s.AppendOutgoing(ctx, remote("m4", "alice", "carol"), "alice")  // 4, queued
	if err := s.DeleteMailboxMessage(ctx, "alice", "m2", "a.example"); err != nil {
		t.Fatal(err)
	}
	if es, _ := s.Mailbox(ctx, "alice", 0, 10); !reflect.DeepEqual(entryIDs(es), []string{"m1", "m3", "m4"}) {
		t.Fatalf("alice's mailbox = %v", entryIDs(es))
	}
	if _, err := s.Message(ctx, "m2"); err != nil {
		t.Fatalf("bob still holds m2: %v", err)
	}
	c := conversation(t, s, "alice", "bob@a.example")
	if c.LastCursor != 1 || !c.LastFromMe || c.Unread != 0 || c.LastPreview != "hello m1" {
		t.Fatalf("after deleting the newest: %+v; want m1 as the newest", c)
	}
	if es, _ := s.ConversationMessages(ctx, "alice", "bob@a.example", 0, 10); !reflect.DeepEqual(entryIDs(es), []string{"m1"}) {
		t.Fatalf("conversation = %v", entryIDs(es))
	}
	if err := s.DeleteMailboxMessage(ctx, "alice", "m2", "a.example"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("deleting again: %v; want ErrNotFound", err)
	}
	if err := s.DeleteMailboxMessage(ctx, "alice", "nope", "a.example"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("deleting an unknown id: %v; want ErrNotFound", err)
	}
	s.DeleteMailboxMessage(ctx, "bob", "m2", "a.example")
	if _, err := s.Message(ctx, "m2"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("nobody holds m2, it must go: %v", err)
	}
	s.DeleteMailboxMessage(ctx, "alice", "m3", "a.example")
	if _, err := s.Message(ctx, "m3"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("a message to herself alone must go: %v", err)
	}
	s.DeleteMailboxMessage(ctx, "alice", "m4", "a.example")
	if _, err := s.Message(ctx, "m4"); err != nil {
		t.Fatalf("a queued message stays for its job: %v", err)
	}
	s.DeleteMailboxMessage(ctx, "alice", "m1", "a.example")
	if cs, _ := s.Conversations(ctx, "alice", 0, 10); len(cs) != 0 {
		t.Fatalf("conversations left: %v", withs(cs))
	}
	// Received, unread, deleted: unread goes down.
	s.AppendMessage(ctx, msg("m5", "bob", "alice"), "bob", "alice")
	s.AppendMessage(ctx, msg("m6", "bob", "alice"), "bob", "alice")
	s.DeleteMailboxMessage(ctx, "alice", "m5", "a.example")
	if c := conversation(t, s, "alice", "bob@a.example"); c.Unread != 1 {
		t.Fatalf("unread after deleting an unread message: %d", c.Unread)
	}
}

func testBlocks(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	a := fednode.Block{Username: "Alice", Address: "bob@b.example", CreatedAt: t0}
	d := fednode.Block{Username: "alice", Domain: "c.example", CreatedAt: t0.Add(time.Second)}
	for _, b := range []fednode.Block{a, d} {
		if err := s.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := s.Blocks(ctx, "ALICE")
	if err != nil || len(bs) != 2 || bs[0].Address != "bob@b.example" || bs[1].Domain != "c.example" || !bs[1].CreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("Blocks = %+v, %v", bs, err)
	}
	for _, c := range []struct {
		from fednode.Address
		want bool
	}{
		{fednode.Address{User: "bob", Domain: "b.example"}, true},
		{fednode.Address{User: "BOB", Domain: "b.example"}, true},
		{fednode.Address{User: "carol", Domain: "b.example"}, false},
		{fednode.Address{User: "anyone", Domain: "c.example"}, true},
	} {
		if got, err := s.Blocked(ctx, "alice", c.from); err != nil || got != c.want {
			t.Errorf("Blocked(%v) = %v, %v; want %v", c.from, got, err, c.want)
		}
	}
	if got, _ := s.Blocked(ctx, "bob", fednode.Address{User: "bob", Domain: "b.example"}); got {
		t.Error("a block is one user's")
	}
	if err := s.DeleteBlock(ctx, "alice", fednode.Block{Domain: "c.example"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlock(ctx, "alice", fednode.Block{Domain: "c.example"}); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("deleting again: %v; want ErrNotFound", err)
	}
	if bs, _ := s.Blocks(ctx, "alice"); len(bs) != 1 {
		t.Fatalf("after delete: %+v", bs)
	}
	if bs, err := s.Blocks(ctx, "nobody"); err != nil || len(bs) != 0 {
		t.Fatalf("no blocks: %v, %v", bs, err)
	}
}
