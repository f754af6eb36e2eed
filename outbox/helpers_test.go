package outbox_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/outbox"
)

// peerMap resolves each domain to its own inbox.
type peerMap map[string]*federation.Peer

func (p peerMap) Peer(_ context.Context, domain string) (*federation.Peer, error) {
	if pr, ok := p[domain]; ok {
		return pr, nil
	}
	return nil, fmt.Errorf("no peer %s", domain)
}

func (p peerMap) RefreshTrusted(ctx context.Context, domain string) (*federation.Peer, bool, error) {
	pr, err := p.Peer(ctx, domain)
	return pr, false, err
}

var _ outbox.Peers = peerMap{}

// peerAt is a peer whose inbox is at base (a URL without a path), sealed
// to with enc.
func peerAt(domain, base string, enc *rsa.PublicKey) *federation.Peer {
	inbox, _ := url.Parse(base + federation.InboxPath)
	return &federation.Peer{Domain: domain, Inbox: inbox, Enc: federation.Recipient{Domain: domain,
		EncKeyID: domain + "#enc-" + strings.Repeat("0", 32), EncKey: enc}}
}

// peerKey is an RSA-4096 key, as peers publish.
var peerKey = &testkeys.Key(1).PublicKey

// cheapKey is a key too small for anything but tests and benchmarks that
// are not about the seal: wrapping a data key with RSA-4096 costs about
// half a millisecond, which would hide what the outbox does around it
// (and slow the race detector down).
var cheapKey = sync.OnceValue(func() *rsa.PublicKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return &k.PublicKey
})

// freeKeyring signs with bytes that cost nothing to make: for measuring
// what the outbox does around a request, not RSA.
type freeKeyring struct{}

func (freeKeyring) Sign(context.Context, []byte) (string, []byte, error) {
	return "sig-bench", make([]byte, 512), nil
}

func (freeKeyring) Decrypt(context.Context, string, []byte) ([]byte, error) {
	return nil, keys.ErrUnknownKey
}

func (freeKeyring) PublicKeys(context.Context) ([]keys.PublicKey, error) { return nil, nil }

var _ keys.Keyring = freeKeyring{}

// realKeyring signs with an RSA-4096 key, as a node does.
func realKeyring(tb testing.TB) keys.Keyring {
	tb.Helper()
	n := 0
	kr, err := keys.OpenLocal(tb.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) { n++; return testkeys.Key(n + 1), nil }})
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

// envelopeIDs reads a delivery's envelope and returns its messages' ids.
func envelopeIDs(r *http.Request) []string {
	body, _ := io.ReadAll(r.Body)
	var env federation.Envelope
	json.Unmarshal(body, &env)
	var ids []string
	for _, m := range env.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

// counter is an inbox that accepts everything, counting requests and
// messages.
type counter struct {
	requests, messages atomic.Int64
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ids := envelopeIDs(r)
	accepted(w, ids)
	c.messages.Add(int64(len(ids)))
	c.requests.Add(1)
}

// readCounter is the bolt store counting the jobs its PeerJobs returns.
type readCounter struct {
	*bolt.Store
	read atomic.Int64
}

func (s *readCounter) PeerJobs(ctx context.Context, peer string, after uint64, limit int) ([]fednode.Job, error) {
	jobs, err := s.Store.PeerJobs(ctx, peer, after, limit)
	s.read.Add(int64(len(jobs)))
	return jobs, err
}

func openBolt(tb testing.TB) *bolt.Store {
	tb.Helper()
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: tb.TempDir(), Timeout: time.Second, Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// outgoing is message i of n spread over pairs sender–recipient pairs, to
// domain.
func outgoing(domain string, i, pairs int) fednode.Message {
	p := i % pairs
	return fednode.Message{ID: fednode.NewID(time.Now()), From: fednode.Address{User: fmt.Sprintf("u%02d", p), Domain: "a.example"},
		To: fednode.Address{User: fmt.Sprintf("r%02d", p), Domain: domain}, Content: fmt.Sprintf("message %d", i), Tags: []string{},
		CreatedAt: time.Now(), Status: fednode.StatusQueued}
}

// fill enqueues n messages to domain over pairs pairs, from 256 writers so
// that the group committer shares its fsyncs among them.
func fill(tb testing.TB, db *bolt.Store, domain string, n, pairs int) {
	tb.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				m := outgoing(domain, i, pairs)
				if _, err := db.AppendOutgoing(context.Background(), m, m.From.User); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
}

func startOutbox(tb testing.TB, cfg outbox.Config, st outbox.Store, peers outbox.Peers, kr keys.Keyring) *outbox.Outbox {
	tb.Helper()
	return startOutboxWith(tb, cfg, st, peers, kr, federation.NewHTTPClient(federation.ClientOptions{AllowPrivate: true}), nil)
}

// startOutboxWith is startOutbox with an HTTP client of the test's, and a
// status hook set before it runs.
func startOutboxWith(tb testing.TB, cfg outbox.Config, st outbox.Store, peers outbox.Peers, kr keys.Keyring, client *http.Client, onStatus func([]outbox.StatusChange)) *outbox.Outbox {
	tb.Helper()
	ob := outbox.New(cfg, st, peers, kr, client, slog.New(slog.DiscardHandler), time.Now)
	if onStatus != nil {
		ob.OnStatus(onStatus)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ob.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	return ob
}

// waitFor polls until cond holds or the time is up.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// deadInbox is the base URL of a peer that is down: refusing connections,
// or (hang) accepting them and never answering.
func deadInbox(tb testing.TB, hang bool) string {
	tb.Helper()
	if hang {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // so that the server sees the client go away
			<-r.Context().Done()
		}))
		tb.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
		return srv.URL
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
