package bolt_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) fednode.Store {
		db, err := bolt.Open(context.Background(), bolt.Options{Dir: t.TempDir(), Timeout: time.Second, Create: true, Sealer: storetest.NewSealer(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: dir, Timeout: time.Second, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	m := fednode.Message{ID: "m1", From: fednode.Address{User: "a", Domain: "d"}, To: fednode.Address{User: "b", Domain: "d"}, Content: "x"}
	if _, err := db.AppendMessage(ctx, m, "a", "b"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = bolt.Open(context.Background(), bolt.Options{Dir: dir, Timeout: time.Second, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Mailbox(ctx, "b", 0, 10)
	if err != nil || len(got) != 1 || got[0].Message.Content != "x" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: dir, Timeout: time.Second, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = bolt.Open(context.Background(), bolt.Options{Dir: dir, Timeout: 50 * time.Millisecond, Create: true})
	if err == nil || !strings.Contains(err.Error(), "is the node running") {
		t.Fatalf("second Open: %v, want a clear in-use error", err)
	}
}
