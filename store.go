package fednode

import (
	"context"
	"time"
)

// Store is the node's storage: the contract both backends (bolt/, the
// embedded store of one process, and redis/, shared by the replicas of one
// node) implement, and that the conformance suite in storetest/ holds them
// to. Packages that need part of it declare a narrow interface of their own
// with just the methods they call.
//
// Refusals are the sentinel errors of this package: ErrNotFound, ErrTaken,
// ErrDuplicate; test them with errors.Is. A store that has failed closed
// wraps ErrStoreFailed in every write it refuses; a store that cannot reach
// what it depends on now (Redis down, restarting, failing over, too slow)
// wraps ErrUnavailable, so callers never match an error's text. Every
// error names the operation that failed: "<adapter>: <operation>: <cause>".
type Store interface {
	// Ping reports whether the store can serve, and if not, why.
	Ping(ctx context.Context) error
	// Close releases the store. Every later call that reads or writes
	// fails; a second Close does nothing.
	Close() error

	// CreateUser stores a new user, refusing with ErrTaken a name taken in
	// any letter case, or once taken by a deleted user.
	CreateUser(ctx context.Context, u User) error
	// User returns the user with that name in any letter case, or ErrNotFound.
	User(ctx context.Context, username string) (User, error)
	// UpdateUser applies fn to the stored user atomically; an error from fn
	// is returned and nothing is written.
	UpdateUser(ctx context.Context, username string, fn func(*User) error) error
	// Users returns a page of users: up to q.Limit that match q, whose
	// canonical names come after q.After, in order of canonical name.
	Users(ctx context.Context, q UserQuery) ([]User, error)
	// DeleteUser deletes the account tomb.Username names, with its
	// sessions, its login failures, its mailbox and every message of it
	// that no other local user holds (see HeldOnlyBy; domain is the local
	// node's), and keeps tomb so that CreateUser refuses the name with
	// ErrTaken for good. A user that does not exist is ErrNotFound. The
	// account and its sessions go atomically; on Redis the messages follow,
	// and deleting a name again finishes a deletion that was interrupted.
	DeleteUser(ctx context.Context, tomb DeletedUser, domain string) (UserDeletion, error)

	// CreateSession stores s; when its user then has more than max sessions
	// (max > 0), the oldest are deleted and their ids returned.
	CreateSession(ctx context.Context, s Session, max int) ([]string, error)
	// Session returns the live session with that id, or ErrNotFound.
	Session(ctx context.Context, id string) (Session, error)
	// DeleteSession revokes one session; deleting an absent one is not an error.
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions revokes every session of one user and returns their ids.
	DeleteUserSessions(ctx context.Context, username string) ([]string, error)
	// DeleteAllSessions revokes every session of every user and returns their ids.
	DeleteAllSessions(ctx context.Context) ([]string, error)
	// PruneSessions deletes the sessions that expired before now and counts them.
	PruneSessions(ctx context.Context, now time.Time) (int, error)

	// AddLoginFailure records a failed login for key at time at, forgets
	// those before since, and returns the failures that remain, oldest first.
	AddLoginFailure(ctx context.Context, key string, at, since time.Time) ([]time.Time, error)
	// LoginFailures returns the failures for key at or after since, oldest first.
	LoginFailures(ctx context.Context, key string, since time.Time) ([]time.Time, error)
	// ClearLoginFailures forgets the failures for key (after a good login).
	ClearLoginFailures(ctx context.Context, key string) error
	// PruneLoginFailures deletes the records whose every failure is before
	// since and counts them.
	PruneLoginFailures(ctx context.Context, since time.Time) (int, error)

	// AppendMessage stores m and appends it to each named mailbox (a name
	// given twice is appended once), atomically, and returns the cursor m
	// got in each mailbox in the order the names were given. A message whose
	// id is already stored is refused with ErrDuplicate and changes nothing.
	AppendMessage(ctx context.Context, m Message, mailboxes ...string) ([]uint64, error)
	// Message returns the stored message with that id, or ErrNotFound.
	Message(ctx context.Context, id string) (Message, error)
	// Messages returns every stored message among ids, keyed by id, in one
	// read: ids not stored are absent (not an error), and no ids give an
	// empty, non-nil map.
	Messages(ctx context.Context, ids []string) (map[string]Message, error)
	// Mailbox returns up to limit entries of one mailbox with cursors
	// greater than after, oldest first.
	Mailbox(ctx context.Context, username string, after uint64, limit int) ([]Entry, error)
	// MailboxHead returns the newest cursor of a mailbox, 0 when it is empty.
	MailboxHead(ctx context.Context, username string) (uint64, error)

	// Conversations returns up to limit of a user's conversations whose
	// LastCursor is below before (0: no bound), newest first. The index is
	// kept by AppendMessage and AppendOutgoing in the write that appends to
	// the mailbox (see ConversationOf).
	Conversations(ctx context.Context, username string, before uint64, limit int) ([]Conversation, error)
	// ConversationMessages returns up to limit entries of a user's mailbox
	// that belong to the conversation with (a ConversationKey) and have a
	// cursor below before (0: no bound), newest first.
	ConversationMessages(ctx context.Context, username, with string, before uint64, limit int) ([]Entry, error)
	// MarkConversationRead moves the read mark of a conversation up to
	// cursor (never back). A conversation not in the index is ErrNotFound.
	MarkConversationRead(ctx context.Context, username, with string, cursor uint64) error
	// DeleteMailboxMessage removes message id from a user's mailbox and
	// conversation index, and deletes the message itself (with its dead
	// letter) when no other local user holds it (see HeldOnlyBy; domain is
	// the local node's). A message not in the mailbox is ErrNotFound.
	DeleteMailboxMessage(ctx context.Context, username, id, domain string) error

	// PutUserKeys stores (or replaces) a user's published end-to-end keys
	// and their backup. A user that does not exist is ErrNotFound.
	PutUserKeys(ctx context.Context, username string, k UserKeys) error
	// UserKeys returns a user's published end-to-end keys, or ErrNotFound.
	UserKeys(ctx context.Context, username string) (UserKeys, error)
	// DeleteUserKeys removes a user's keys and backup; removing absent
	// keys is not an error. DeleteUser removes them too.
	DeleteUserKeys(ctx context.Context, username string) error

	// AddBlock stores (or replaces) b.
	AddBlock(ctx context.Context, b Block) error
	// DeleteBlock removes the block of username with b's Address or Domain,
	// or returns ErrNotFound.
	DeleteBlock(ctx context.Context, username string, b Block) error
	// Blocks returns a user's blocks, in order of Key.
	Blocks(ctx context.Context, username string) ([]Block, error)
	// Blocked reports whether username blocks messages from from (its
	// address or its domain).
	Blocked(ctx context.Context, username string, from Address) (bool, error)

	// AppendOutgoing stores m (addressed to another node), appends it to the
	// sender's mailbox and enqueues its delivery job for m.To.Domain,
	// atomically: a message is never accepted without its job, nor a job
	// without its message. It returns m's cursor in the sender's mailbox.
	AppendOutgoing(ctx context.Context, m Message, senderMailbox string) (uint64, error)
	// PendingPeers returns the peers with jobs waiting.
	PendingPeers(ctx context.Context) ([]string, error)
	// PeerJobs returns up to limit of a peer's jobs with Seq greater than
	// after, oldest first: a reader that passes the last Seq it got reads
	// the queue forward, each job once, at a cost that does not grow with
	// the jobs before its cursor. A cursor never skips a job: a job is
	// never enqueued with a Seq at or below one a reader could already see.
	PeerJobs(ctx context.Context, peer string, after uint64, limit int) ([]Job, error)
	// NoteAttempt records a failed attempt, and why (a Delivery* code and
	// words), on the given jobs.
	NoteAttempt(ctx context.Context, peer string, seqs []uint64, code, reason string) error
	// FinishJobs ends jobs atomically: each is removed, its message's status
	// set, and a failed one recorded as a dead letter.
	FinishJobs(ctx context.Context, peer string, results []JobResult, now time.Time) error
	// DeadLetters returns up to limit of the messages the node gave up delivering.
	DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error)
	// OutgoingJob returns the queued job of a message to peer, or ErrNotFound
	// when it has none (delivered, failed, or not a remote message).
	OutgoingJob(ctx context.Context, peer, messageID string) (Job, error)
	// RedriveDeadLetters puts the dead letters f picks back in their peers'
	// queues, in the order their messages were created (id order), after
	// every job already queued: each job is new (no attempts, enqueued at
	// now), its message queued again, its dead letter gone, atomically per
	// message. It returns the dead letters it redrove, in that order.
	RedriveDeadLetters(ctx context.Context, f DeadLetterFilter, now time.Time) ([]DeadLetter, error)
	// PurgeDeadLetters forgets the dead letters f picks (their messages
	// stay failed) and returns them.
	PurgeDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error)
	// QueueStats returns, for each peer with jobs waiting, how many wait
	// and when the first of them was enqueued, and how many dead letters
	// are kept. It is read on metrics scrapes, so its cost grows with the
	// number of peers, never with the number of jobs.
	QueueStats(ctx context.Context) (QueueStats, error)

	// SetBan stores (or replaces) the ban of b.Key.
	SetBan(ctx context.Context, b Ban) error
	// Ban returns the ban record of a key, active or not, or ErrNotFound.
	Ban(ctx context.Context, key string) (Ban, error)
	// DeleteBan lifts a ban and forgets its level.
	DeleteBan(ctx context.Context, key string) error
	// Bans returns every ban record, active or expired but not yet pruned.
	Bans(ctx context.Context) ([]Ban, error)
	// PruneBans deletes the records whose ban ended before since and counts them.
	PruneBans(ctx context.Context, since time.Time) (int, error)

	// Meta returns a value the node keeps about itself, or ErrNotFound.
	Meta(ctx context.Context, key string) ([]byte, error)
	// SetMeta stores a value the node keeps about itself.
	SetMeta(ctx context.Context, key string, value []byte) error

	// PeerDocument returns a cached peer node document and when it was
	// fetched, or ErrNotFound.
	PeerDocument(ctx context.Context, domain string) ([]byte, time.Time, error)
	// SetPeerDocument caches a peer node document for every replica.
	SetPeerDocument(ctx context.Context, domain string, doc []byte, fetchedAt time.Time) error

	// AcquireLease takes the named lease for owner for ttl, or renews it if
	// owner holds it, and reports whether owner holds it now. A lease whose
	// holder stopped renewing is taken over after ttl.
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error

	// CreateInvite stores a new invite, refusing a code already stored
	// with ErrDuplicate.
	CreateInvite(ctx context.Context, inv Invite) error
	// Invites returns every stored invite, used or not, by CreatedAt then Code.
	Invites(ctx context.Context) ([]Invite, error)
	// DeleteInvite revokes an invite, or returns ErrNotFound.
	DeleteInvite(ctx context.Context, code string) error
	// CreateUserWithInvite stores u and marks the invite used by u in one
	// atomic step, so that of any number of concurrent calls with one code
	// (on any replica) at most one succeeds, and neither the account nor
	// the use is ever written without the other. It refuses with ErrTaken,
	// ErrInviteUnknown, ErrInviteUsed or ErrInviteExpired (at now), and
	// then writes nothing.
	CreateUserWithInvite(ctx context.Context, u User, code string, now time.Time) error
	// PruneInvites deletes the invites that expired before since, used or
	// not, and counts them.
	PruneInvites(ctx context.Context, since time.Time) (int, error)
}
