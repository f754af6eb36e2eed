package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// fakeFetcher answers a document for every address but "nobody", counting
// fetches per address; release, when set, holds every fetch until closed.
type fakeFetcher struct {
	mu      sync.Mutex
	calls   map[string]int
	release chan struct{}
	fail    atomic.Bool
}

var _ userKeysFetcher = (*fakeFetcher)(nil)

func (f *fakeFetcher) Fetch(ctx context.Context, addr fednode.Address) (fednode.UserKeyDocument, error) {
	f.mu.Lock()
	f.calls[addr.String()]++
	f.mu.Unlock()
	if f.release != nil {
		<-f.release
	}
	switch {
	case f.fail.Load():
		return fednode.UserKeyDocument{}, fednode.Errorf(fednode.EUnavailable, "down")
	case addr.User == "nobody":
		return fednode.UserKeyDocument{}, fednode.Errorf(fednode.ENotFound, "no keys")
	}
	return fednode.UserKeyDocument{Address: addr.String()}, nil
}

func (f *fakeFetcher) count(addr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[addr]
}

func TestPeerKeysFetchOncePerAddressPerTTL(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := &fakeFetcher{calls: map[string]int{}}
	p := newPeerKeys(f, clock, 0, 0)
	bob := fednode.Address{User: "bob", Domain: "b.example"}
	nobody := fednode.Address{User: "nobody", Domain: "b.example"}
	ctx := context.Background()

	for range 100 {
		if d, err := p.Fetch(ctx, bob); err != nil || d.Address != bob.String() {
			t.Fatalf("bob: %+v, %v", d, err)
		}
		if _, err := p.Fetch(ctx, nobody); fednode.ErrorCode(err) != fednode.ENotFound {
			t.Fatalf("nobody: %v", err)
		}
	}
	if f.count(bob.String()) != 1 || f.count(nobody.String()) != 1 {
		t.Fatalf("100 lookups fetched bob %d and nobody %d times; want 1 each", f.count(bob.String()), f.count(nobody.String()))
	}
	advance(peerKeysNotFoundTTL)
	p.Fetch(ctx, bob)
	p.Fetch(ctx, nobody)
	if f.count(bob.String()) != 1 || f.count(nobody.String()) != 2 {
		t.Fatalf("after the not-found TTL: bob %d, nobody %d; want 1 and 2", f.count(bob.String()), f.count(nobody.String()))
	}
	advance(peerKeysTTL - peerKeysNotFoundTTL)
	p.Fetch(ctx, bob)
	if f.count(bob.String()) != 2 {
		t.Fatalf("after the TTL: bob fetched %d times; want 2", f.count(bob.String()))
	}

	// A failure is not kept: the next lookup asks again.
	advance(peerKeysTTL)
	f.fail.Store(true)
	for range 2 {
		if _, err := p.Fetch(ctx, bob); fednode.ErrorCode(err) != fednode.EUnavailable {
			t.Fatalf("a peer down: %v (fetches %d)", err, f.count(bob.String()))
		}
	}
	if f.count(bob.String()) != 4 {
		t.Fatalf("failures fetched bob %d times in all; want 4", f.count(bob.String()))
	}
}

func TestPeerKeysCoalesceConcurrentLookups(t *testing.T) {
	f := &fakeFetcher{calls: map[string]int{}, release: make(chan struct{})}
	p := newPeerKeys(f, time.Now, 0, 0)
	bob := fednode.Address{User: "bob", Domain: "b.example"}

	// A caller that gives up does not fail the others.
	gone, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := p.Fetch(gone, bob); first <- err }()
	for f.count(bob.String()) == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			d, err := p.Fetch(context.Background(), bob)
			if err == nil && d.Address != bob.String() {
				err = errors.New("another document")
			}
			errs <- err
		})
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up: %v", err)
	}
	time.Sleep(20 * time.Millisecond) // the 50 are waiting on the one fetch
	close(f.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count(bob.String()); n != 1 {
		t.Fatalf("51 concurrent lookups made %d fetches; want 1", n)
	}
}
