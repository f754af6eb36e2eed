package storetest

import (
	"context"
	"time"

	"github.com/fednode/fednode"
)

// Call is one method of fednode.Store, called with arguments that need no
// setup, and the operation its error must name: an adapter's errors read
// "<adapter>: <Op>: <cause>".
type Call struct {
	Op string
	Do func(ctx context.Context, s fednode.Store) error
}

// Calls returns a Call for every method of fednode.Store but Close, by
// method name. The suite checks that none is missing.
func Calls() map[string]Call {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := fednode.Message{ID: "m2", From: fednode.Address{User: "alice", Domain: "a.example"}, To: fednode.Address{User: "bob", Domain: "b.example"}, Content: "x", CreatedAt: t0}
	return map[string]Call{
		"Ping": {"ping", func(ctx context.Context, s fednode.Store) error { return s.Ping(ctx) }},
		"CreateUser": {"create user", func(ctx context.Context, s fednode.Store) error {
			return s.CreateUser(ctx, fednode.User{Username: "carol"})
		}},
		"User": {"user", func(ctx context.Context, s fednode.Store) error { _, err := s.User(ctx, "alice"); return err }},
		"UpdateUser": {"update user", func(ctx context.Context, s fednode.Store) error {
			return s.UpdateUser(ctx, "alice", func(*fednode.User) error { return nil })
		}},
		"Users": {"users", func(ctx context.Context, s fednode.Store) error {
			_, err := s.Users(ctx, fednode.UserQuery{Limit: 10})
			return err
		}},
		"DeleteUser": {"delete user", func(ctx context.Context, s fednode.Store) error {
			_, err := s.DeleteUser(ctx, fednode.DeletedUser{Username: "alice"}, "a.example")
			return err
		}},
		"CreateSession": {"create session", func(ctx context.Context, s fednode.Store) error {
			_, err := s.CreateSession(ctx, fednode.Session{ID: "s1", Username: "alice"}, 3)
			return err
		}},
		"Session":       {"session", func(ctx context.Context, s fednode.Store) error { _, err := s.Session(ctx, "s0"); return err }},
		"DeleteSession": {"delete session", func(ctx context.Context, s fednode.Store) error { return s.DeleteSession(ctx, "s0") }},
		"DeleteUserSessions": {"delete user sessions", func(ctx context.Context, s fednode.Store) error {
			_, err := s.DeleteUserSessions(ctx, "alice")
			return err
		}},
		"DeleteAllSessions": {"delete all sessions", func(ctx context.Context, s fednode.Store) error { _, err := s.DeleteAllSessions(ctx); return err }},
		"PruneSessions":     {"prune sessions", func(ctx context.Context, s fednode.Store) error { _, err := s.PruneSessions(ctx, t0); return err }},
		"AddLoginFailure": {"add login failure", func(ctx context.Context, s fednode.Store) error {
			_, err := s.AddLoginFailure(ctx, "alice", t0, t0)
			return err
		}},
		"LoginFailures": {"login failures", func(ctx context.Context, s fednode.Store) error {
			_, err := s.LoginFailures(ctx, "alice", t0)
			return err
		}},
		"ClearLoginFailures": {"clear login failures", func(ctx context.Context, s fednode.Store) error { return s.ClearLoginFailures(ctx, "alice") }},
		"PruneLoginFailures": {"prune login failures", func(ctx context.Context, s fednode.Store) error { _, err := s.PruneLoginFailures(ctx, t0); return err }},
		"AppendMessage": {"append message m2", func(ctx context.Context, s fednode.Store) error {
			_, err := s.AppendMessage(ctx, m, "alice")
			return err
		}},
		"Conversations": {"conversations", func(ctx context.Context, s fednode.Store) error {
			_, err := s.Conversations(ctx, "alice", 0, 10)
			return err
		}},
		"ConversationMessages": {"conversation messages", func(ctx context.Context, s fednode.Store) error {
			_, err := s.ConversationMessages(ctx, "alice", "bob@a.example", 0, 10)
			return err
		}},
		"MarkConversationRead": {"mark conversation read", func(ctx context.Context, s fednode.Store) error {
			return s.MarkConversationRead(ctx, "alice", "bob@a.example", 1)
		}},
		"DeleteMailboxMessage": {"delete message m1", func(ctx context.Context, s fednode.Store) error {
			return s.DeleteMailboxMessage(ctx, "alice", "m1", "a.example")
		}},
		"AddBlock": {"add block", func(ctx context.Context, s fednode.Store) error {
			return s.AddBlock(ctx, fednode.Block{Username: "alice", Domain: "b.example"})
		}},
		"DeleteBlock": {"delete block", func(ctx context.Context, s fednode.Store) error {
			return s.DeleteBlock(ctx, "alice", fednode.Block{Domain: "b.example"})
		}},
		"PutUserKeys": {"put user keys", func(ctx context.Context, s fednode.Store) error {
			return s.PutUserKeys(ctx, "alice", fednode.UserKeys{Enc: []byte("e"), Sig: []byte("s"), CreatedAt: t0})
		}},
		"UserKeys":       {"user keys", func(ctx context.Context, s fednode.Store) error { _, err := s.UserKeys(ctx, "alice"); return err }},
		"DeleteUserKeys": {"delete user keys", func(ctx context.Context, s fednode.Store) error { return s.DeleteUserKeys(ctx, "alice") }},
		"Blocks":         {"blocks", func(ctx context.Context, s fednode.Store) error { _, err := s.Blocks(ctx, "alice"); return err }},
		"Blocked": {"blocked", func(ctx context.Context, s fednode.Store) error {
			_, err := s.Blocked(ctx, "alice", fednode.Address{User: "bob", Domain: "b.example"})
			return err
		}},
		"Message": {"message", func(ctx context.Context, s fednode.Store) error { _, err := s.Message(ctx, "m1"); return err }},
		"Messages": {"messages", func(ctx context.Context, s fednode.Store) error {
			_, err := s.Messages(ctx, []string{"m1"})
			return err
		}},
		"Mailbox":     {"mailbox", func(ctx context.Context, s fednode.Store) error { _, err := s.Mailbox(ctx, "alice", 0, 10); return err }},
		"MailboxHead": {"mailbox head", func(ctx context.Context, s fednode.Store) error { _, err := s.MailboxHead(ctx, "alice"); return err }},
		"AppendOutgoing": {"append outgoing message m2", func(ctx context.Context, s fednode.Store) error {
			_, err := s.AppendOutgoing(ctx, m, "alice")
			return err
		}},
		"PendingPeers": {"pending peers", func(ctx context.Context, s fednode.Store) error { _, err := s.PendingPeers(ctx); return err }},
		"PeerJobs": {"peer jobs", func(ctx context.Context, s fednode.Store) error {
			_, err := s.PeerJobs(ctx, "b.example", 0, 10)
			return err
		}},
		"NoteAttempt": {"note attempt", func(ctx context.Context, s fednode.Store) error {
			return s.NoteAttempt(ctx, "b.example", []uint64{1}, fednode.DeliveryRefused, "refused")
		}},
		"OutgoingJob": {"outgoing job", func(ctx context.Context, s fednode.Store) error {
			_, err := s.OutgoingJob(ctx, "b.example", "m1")
			return err
		}},
		"RedriveDeadLetters": {"redrive dead letters", func(ctx context.Context, s fednode.Store) error {
			_, err := s.RedriveDeadLetters(ctx, fednode.DeadLetterFilter{}, t0)
			return err
		}},
		"PurgeDeadLetters": {"purge dead letters", func(ctx context.Context, s fednode.Store) error {
			_, err := s.PurgeDeadLetters(ctx, fednode.DeadLetterFilter{Peer: "b.example"})
			return err
		}},
		"FinishJobs": {"finish jobs", func(ctx context.Context, s fednode.Store) error {
			return s.FinishJobs(ctx, "b.example", []fednode.JobResult{{Seq: 1, MessageID: "m1", Status: fednode.StatusDelivered}}, t0)
		}},
		"DeadLetters": {"dead letters", func(ctx context.Context, s fednode.Store) error { _, err := s.DeadLetters(ctx, 10); return err }},
		"QueueStats":  {"queue stats", func(ctx context.Context, s fednode.Store) error { _, err := s.QueueStats(ctx); return err }},
		"SetBan": {"set ban", func(ctx context.Context, s fednode.Store) error {
			return s.SetBan(ctx, fednode.Ban{Key: "203.0.113.7", Until: t0})
		}},
		"Ban":       {"ban", func(ctx context.Context, s fednode.Store) error { _, err := s.Ban(ctx, "203.0.113.7"); return err }},
		"DeleteBan": {"delete ban", func(ctx context.Context, s fednode.Store) error { return s.DeleteBan(ctx, "203.0.113.7") }},
		"Bans":      {"bans", func(ctx context.Context, s fednode.Store) error { _, err := s.Bans(ctx); return err }},
		"PruneBans": {"prune bans", func(ctx context.Context, s fednode.Store) error { _, err := s.PruneBans(ctx, t0); return err }},
		"Meta":      {"meta", func(ctx context.Context, s fednode.Store) error { _, err := s.Meta(ctx, "k"); return err }},
		"SetMeta":   {"set meta", func(ctx context.Context, s fednode.Store) error { return s.SetMeta(ctx, "k", []byte("v")) }},
		"PeerDocument": {"peer document", func(ctx context.Context, s fednode.Store) error {
			_, _, err := s.PeerDocument(ctx, "b.example")
			return err
		}},
		"SetPeerDocument": {"set peer document", func(ctx context.Context, s fednode.Store) error {
			return s.SetPeerDocument(ctx, "b.example", []byte("{}"), t0)
		}},
		"AcquireLease": {"acquire lease", func(ctx context.Context, s fednode.Store) error {
			_, err := s.AcquireLease(ctx, "l", "r1", time.Second)
			return err
		}},
		"ReleaseLease": {"release lease", func(ctx context.Context, s fednode.Store) error { return s.ReleaseLease(ctx, "l", "r1") }},
		"CreateInvite": {"create invite", func(ctx context.Context, s fednode.Store) error {
			return s.CreateInvite(ctx, fednode.Invite{Code: "c2", ExpiresAt: t0})
		}},
		"Invites":      {"invites", func(ctx context.Context, s fednode.Store) error { _, err := s.Invites(ctx); return err }},
		"DeleteInvite": {"delete invite", func(ctx context.Context, s fednode.Store) error { return s.DeleteInvite(ctx, "c1") }},
		"CreateUserWithInvite": {"create user with invite", func(ctx context.Context, s fednode.Store) error {
			return s.CreateUserWithInvite(ctx, fednode.User{Username: "carol"}, "c1", t0)
		}},
		"PruneInvites": {"prune invites", func(ctx context.Context, s fednode.Store) error { _, err := s.PruneInvites(ctx, t0); return err }},
	}
}
