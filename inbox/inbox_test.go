package inbox_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/inbox"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
)

const (
	sender   = "a.example"
	receiver = "b.example"
)

// keyring opens a local keyring whose keys are the fixed test keys from
// first on.
func keyring(tb testing.TB, first int) *keys.Local {
	tb.Helper()
	n := first
	kr, err := keys.OpenLocal(tb.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) { n++; return testkeys.Key(n - 1), nil }})
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

func current(tb testing.TB, kr keys.Keyring, use string) keys.PublicKey {
	tb.Helper()
	pubs, err := kr.PublicKeys(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	k, ok := keys.CurrentKey(pubs, use)
	if !ok {
		tb.Fatalf("no current %s key", use)
	}
	return k
}

// senderPeer serves the sending node's document as the inbox's directory
// would.
type senderPeer struct{ peer *federation.Peer }

func (p senderPeer) Peer(context.Context, string) (*federation.Peer, error) { return p.peer, nil }
func (p senderPeer) Refresh(context.Context, string) (*federation.Peer, bool, error) {
	return p.peer, false, nil
}
func (p senderPeer) RefreshTrusted(context.Context, string) (*federation.Peer, bool, error) {
	return p.peer, false, nil
}

var _ inbox.Peers = senderPeer{}

// decrypter is the receiver's keyring with its Decrypt replaced.
type decrypter struct {
	keys.Keyring
	decrypt func(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error)
}

func (d decrypter) Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error) {
	return d.decrypt(ctx, keyID, ciphertext)
}

// groupStore is the bolt store recording its appends: the ids of each
// AppendMessages call, and of each single AppendMessage.
type groupStore struct {
	*bolt.Store
	mu      sync.Mutex
	sets    [][]string
	singles []string
}

func (s *groupStore) AppendMessages(ctx context.Context, msgs []fednode.Message, mailboxes [][]string) ([][]uint64, []error) {
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	s.mu.Lock()
	s.sets = append(s.sets, ids)
	s.mu.Unlock()
	return s.Store.AppendMessages(ctx, msgs, mailboxes)
}

func (s *groupStore) AppendMessage(ctx context.Context, m fednode.Message, mailboxes ...string) ([]uint64, error) {
	s.mu.Lock()
	s.singles = append(s.singles, m.ID)
	s.mu.Unlock()
	return s.Store.AppendMessage(ctx, m, mailboxes...)
}

// singleStore is a store that can only append one message at a time (as
// the Redis store).
type singleStore struct{ inbox.Store }

// world is a receiving inbox on a bolt store with users bob and carol,
// and a sending node's keyring.
type world struct {
	t      testing.TB
	db     *bolt.Store
	store  *groupStore
	in     *inbox.Inbox
	sender *keys.Local
	to     federation.Recipient
	woken  chan []string
}

// newWorld builds the inbox; tweak may wrap its keyring or replace its
// store before it is made.
func newWorld(t testing.TB, tweak func(*inbox.Deps)) *world {
	t.Helper()
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: t.TempDir(), Timeout: time.Second, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, u := range []string{"bob", "carol"} {
		if err := db.CreateUser(context.Background(), fednode.User{Username: u, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{t: t, db: db, store: &groupStore{Store: db}, sender: keyring(t, 1), woken: make(chan []string, 1<<16)}
	rk := keyring(t, 3)
	enc := current(t, rk, keys.UseEnc)
	w.to = federation.Recipient{Domain: receiver, EncKeyID: federation.KeyID(receiver, enc.ID), EncKey: enc.Key}
	sig := current(t, w.sender, keys.UseSig)
	peer := &federation.Peer{Domain: sender, SigKeys: map[string]*rsa.PublicKey{federation.KeyID(sender, sig.ID): sig.Key}}
	deps := inbox.Deps{Store: w.store, Peers: senderPeer{peer}, Keyring: rk, Allowed: func(string) bool { return true },
		LimitIP: func(context.Context, string) error { return nil }, LimitPeer: func(context.Context, string) error { return nil },
		LimitGet: func(context.Context, string) error { return nil },
		Notify:   func(users ...string) { w.woken <- users }, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	if tweak != nil {
		tweak(&deps)
	}
	w.in = inbox.New(inbox.Config{Domain: receiver, DateWindow: 5 * time.Minute}, deps)
	return w
}

// message is from alice of the sending node to user of the receiver.
func message(user, content string) fednode.Message {
	return fednode.Message{ID: fednode.NewID(time.Now()), From: fednode.Address{User: "alice", Domain: sender},
		To: fednode.Address{User: user, Domain: receiver}, Content: content, Tags: []string{}, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

func (w *world) seal(msgs ...fednode.Message) federation.Envelope {
	w.t.Helper()
	env, err := federation.SealMessages(sender, w.to, msgs)
	if err != nil {
		w.t.Fatal(err)
	}
	return env
}

// deliver posts env, signed by the sending node, to the inbox.
func (w *world) deliver(env federation.Envelope) (federation.Answer, error) {
	body, _ := json.Marshal(env)
	req, _ := http.NewRequest(http.MethodPost, "http://"+receiver+federation.InboxPath, bytes.NewReader(body))
	if err := federation.SignRequest(context.Background(), w.sender, sender, req, body, time.Now()); err != nil {
		w.t.Fatal(err)
	}
	return w.in.Receive(context.Background(), req, "203.0.113.9")
}

type want struct{ status, code string }

func checkResults(t *testing.T, env federation.Envelope, got federation.Answer, wants []want) {
	t.Helper()
	if len(got.Results) != len(wants) {
		t.Fatalf("%d results for %d messages: %+v", len(got.Results), len(wants), got.Results)
	}
	for i, r := range got.Results {
		if r.ID != env.Messages[i].ID || r.Status != wants[i].status || r.Code != wants[i].code {
			t.Fatalf("result %d: %+v, want %s %s %s", i, r, env.Messages[i].ID, wants[i].status, wants[i].code)
		}
	}
}

// TestEnvelopeIsStoredInOneCommit: an envelope's messages are stored by
// one AppendMessages call (one transaction: see bolt's
// TestAppendMessagesIsOneCommit), in the envelope's order, and no single
// appends; each is answered accepted, in order, and its recipient woken.
func TestEnvelopeIsStoredInOneCommit(t *testing.T) {
	w := newWorld(t, nil)
	var msgs []fednode.Message
	for i := range 8 {
		msgs = append(msgs, message([]string{"bob", "carol"}[i%3%2], fmt.Sprintf("message %d", i)))
	}
	env := w.seal(msgs...)
	ans, err := w.deliver(env)
	if err != nil {
		t.Fatal(err)
	}
	wants := make([]want, len(msgs))
	var ids []string
	for i, m := range msgs {
		wants[i] = want{federation.StatusAccepted, ""}
		ids = append(ids, m.ID)
	}
	checkResults(t, env, ans, wants)
	w.store.mu.Lock()
	sets, singles := w.store.sets, w.store.singles
	w.store.mu.Unlock()
	if len(sets) != 1 || !reflect.DeepEqual(sets[0], ids) || len(singles) != 0 {
		t.Fatalf("appends: sets %v, singles %v; want one set of %v", sets, singles, ids)
	}
	for _, m := range msgs {
		got, err := w.db.Message(context.Background(), m.ID)
		if err != nil || got.Content != m.Content || got.To != m.To || got.Status != fednode.StatusDelivered {
			t.Fatalf("stored %s: %+v, %v", m.ID, got, err)
		}
	}
	var users []string
	for _, m := range msgs {
		users = append(users, m.To.User)
	}
	if woken := <-w.woken; !reflect.DeepEqual(woken, users) {
		t.Fatalf("woken %v, want %v", woken, users)
	}
}

// TestMixedEnvelopeAnswersInOrder: with decryptions finishing in a
// scrambled order, every message is answered in the envelope's order; a
// refused, duplicate or conflicting message changes nothing, stored or
// not; the accepted ones reach their mailboxes in the envelope's order.
func TestMixedEnvelopeAnswersInOrder(t *testing.T) {
	var calls atomic.Int64
	w := newWorld(t, func(d *inbox.Deps) {
		kr := d.Keyring
		d.Keyring = decrypter{Keyring: kr, decrypt: func(ctx context.Context, keyID string, ct []byte) ([]byte, error) {
			// The first decryptions take longest: later messages finish first.
			time.Sleep(time.Duration(max(0, 30-10*calls.Add(1))) * time.Millisecond)
			return kr.Decrypt(ctx, keyID, ct)
		}}
	})
	ctx := context.Background()
	dup, conflict := message("bob", "stored before"), message("bob", "stored before, from elsewhere")
	if _, err := w.db.AppendMessage(ctx, dup, "bob"); err != nil {
		t.Fatal(err)
	}
	other := conflict
	other.From.Domain = "c.example"
	if _, err := w.db.AppendMessage(ctx, other, "bob"); err != nil {
		t.Fatal(err)
	}
	msgs := []fednode.Message{
		message("bob", "first"),
		message("nobody", "to no one"),
		dup,
		message("bob", "second"),
		conflict,
		message("carol", "third"),
		message("bob", " "), // empty once trimmed
		message("bob", "fourth"),
	}
	env := w.seal(msgs...)
	ans, err := w.deliver(env)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, env, ans, []want{
		{federation.StatusAccepted, ""},
		{federation.StatusRefused, fednode.ERecipient},
		{federation.StatusDuplicate, ""},
		{federation.StatusAccepted, ""},
		{federation.StatusRefused, federation.CodeIDConflict},
		{federation.StatusAccepted, ""},
		{federation.StatusRefused, fednode.EInvalidContent},
		{federation.StatusAccepted, ""},
	})
	box, err := w.db.Mailbox(ctx, "bob", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var contents []string
	for _, e := range box {
		contents = append(contents, e.Message.Content)
	}
	if want := []string{"stored before", "stored before, from elsewhere", "first", "second", "fourth"}; !reflect.DeepEqual(contents, want) {
		t.Fatalf("bob's mailbox: %q, want %q", contents, want)
	}
	if got, _ := w.db.Message(ctx, conflict.ID); got.From.Domain != "c.example" {
		t.Fatalf("the conflicting id was overwritten: %+v", got)
	}
	for _, i := range []int{1, 6} {
		if _, err := w.db.Message(ctx, msgs[i].ID); !errors.Is(err, fednode.ErrNotFound) {
			t.Fatalf("refused message %d was stored: %v", i, err)
		}
	}
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	if want := []string{msgs[0].ID, msgs[3].ID, msgs[5].ID, msgs[7].ID}; len(w.store.sets) != 1 || !reflect.DeepEqual(w.store.sets[0], want) {
		t.Fatalf("appends: %v, want one set of the accepted ones in order %v", w.store.sets, want)
	}
}

// TestDecryptsInParallel: with two processors, two messages are opened at
// once, and never more.
func TestDecryptsInParallel(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var mu sync.Mutex
	inFlight, most := 0, 0
	both := make(chan struct{})
	w := newWorld(t, func(d *inbox.Deps) {
		kr := d.Keyring
		d.Keyring = decrypter{Keyring: kr, decrypt: func(ctx context.Context, keyID string, ct []byte) ([]byte, error) {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			if inFlight == 2 {
				select {
				case <-both:
				default:
					close(both)
				}
			}
			mu.Unlock()
			select { // wait for company, but not forever: the test then fails below
			case <-both:
			case <-time.After(2 * time.Second):
			}
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			inFlight--
			mu.Unlock()
			return kr.Decrypt(ctx, keyID, ct)
		}}
	})
	var msgs []fednode.Message
	for i := range 6 {
		msgs = append(msgs, message("bob", fmt.Sprint("parallel ", i)))
	}
	env := w.seal(msgs...)
	ans, err := w.deliver(env)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, env, ans, []want{{"accepted", ""}, {"accepted", ""}, {"accepted", ""}, {"accepted", ""}, {"accepted", ""}, {"accepted", ""}})
	if most != 2 {
		t.Fatalf("%d decryptions at once with GOMAXPROCS 2, want 2", most)
	}
}

// TestKeysDownThenRetried: when the key service fails for one message the
// whole request is answered 503 and that message is not stored; the
// sender's retry of the same envelope then stores each message exactly
// once (those stored the first time are answered duplicate).
func TestKeysDownThenRetried(t *testing.T) {
	var down atomic.Bool
	var failing []byte
	w := newWorld(t, func(d *inbox.Deps) {
		kr := d.Keyring
		d.Keyring = decrypter{Keyring: kr, decrypt: func(ctx context.Context, keyID string, ct []byte) ([]byte, error) {
			if down.Load() && bytes.Equal(ct, failing) {
				return nil, fmt.Errorf("transit: %w", keys.ErrUnavailable)
			}
			return kr.Decrypt(ctx, keyID, ct)
		}}
	})
	var msgs []fednode.Message
	for i := range 5 {
		msgs = append(msgs, message("bob", fmt.Sprint("keys ", i)))
	}
	env := w.seal(msgs...)
	failing = env.Keys[2].Wrapped
	down.Store(true)
	_, err := w.deliver(env)
	var fe *fednode.Error
	if !errors.As(err, &fe) || fe.Code != fednode.EUnavailable || fe.RetryAfter == 0 {
		t.Fatalf("keys down: %v, want unavailable with a Retry-After", err)
	}
	if _, err := w.db.Message(context.Background(), msgs[2].ID); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("the message that could not be opened was stored: %v", err)
	}
	box, _ := w.db.Mailbox(context.Background(), "bob", 0, 100)
	select {
	case woken := <-w.woken:
		if len(woken) != len(box) {
			t.Fatalf("%d messages stored before the 503, %d wake-ups", len(box), len(woken))
		}
	default:
		if len(box) > 0 {
			t.Fatalf("%d messages stored before the 503, and their recipient not woken", len(box))
		}
	}
	down.Store(false)
	ans, err := w.deliver(env)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range ans.Results {
		ok := r.Status == federation.StatusAccepted || r.Status == federation.StatusDuplicate && i != 2
		if r.ID != msgs[i].ID || !ok {
			t.Fatalf("retry, result %d: %+v", i, r)
		}
	}
	if box, _ := w.db.Mailbox(context.Background(), "bob", 0, 100); len(box) != 5 {
		t.Fatalf("bob's mailbox holds %d messages, want each of the 5 once", len(box))
	}
}

// TestConcurrentRedeliveryStoresOnce: the same envelope delivered twice at
// once stores each message once; each is accepted in exactly one answer
// and a duplicate in the other.
func TestConcurrentRedeliveryStoresOnce(t *testing.T) {
	w := newWorld(t, nil)
	var msgs []fednode.Message
	for i := range 6 {
		msgs = append(msgs, message("bob", fmt.Sprint("twice ", i)))
	}
	env := w.seal(msgs...)
	answers := make([]federation.Answer, 2)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if answers[i], err = w.deliver(env); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, m := range msgs {
		statuses := []string{answers[0].Results[i].Status, answers[1].Results[i].Status}
		if !reflect.DeepEqual(statuses, []string{"accepted", "duplicate"}) && !reflect.DeepEqual(statuses, []string{"duplicate", "accepted"}) {
			t.Fatalf("message %d (%s): %v, want accepted once and duplicate once", i, m.ID, statuses)
		}
	}
	if box, _ := w.db.Mailbox(context.Background(), "bob", 0, 100); len(box) != 6 {
		t.Fatalf("bob's mailbox holds %d messages, want 6", len(box))
	}
}

// TestStoreWithoutGroupAppends: a store that appends one message at a time
// gets the envelope's accepted messages concurrently, each recipient's in
// the envelope's order, with the same answers.
func TestStoreWithoutGroupAppends(t *testing.T) {
	w := newWorld(t, func(d *inbox.Deps) { d.Store = singleStore{d.Store} })
	var msgs []fednode.Message
	for i := range 9 {
		msgs = append(msgs, message([]string{"bob", "carol", "nobody"}[i%3], fmt.Sprint("single ", i)))
	}
	env := w.seal(msgs...)
	ans, err := w.deliver(env)
	if err != nil {
		t.Fatal(err)
	}
	var wants []want
	for i := range msgs {
		if i%3 == 2 {
			wants = append(wants, want{federation.StatusRefused, fednode.ERecipient})
		} else {
			wants = append(wants, want{federation.StatusAccepted, ""})
		}
	}
	checkResults(t, env, ans, wants)
	for _, user := range []string{"bob", "carol"} {
		box, _ := w.db.Mailbox(context.Background(), user, 0, 100)
		var got, wantIDs []string
		for _, e := range box {
			got = append(got, e.Message.ID)
		}
		for _, m := range msgs {
			if m.To.User == user {
				wantIDs = append(wantIDs, m.ID)
			}
		}
		if !reflect.DeepEqual(got, wantIDs) {
			t.Fatalf("%s's mailbox %v, want %v", user, got, wantIDs)
		}
	}
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	if len(w.store.sets) != 0 || len(w.store.singles) != 6 {
		t.Fatalf("appends: sets %v, singles %v; want 6 single appends", w.store.sets, w.store.singles)
	}
}
