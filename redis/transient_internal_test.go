package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// TestTransient pins which failures mean "Redis cannot answer now" for
// the kinds an outage test cannot easily make: a server loading its data,
// a cluster failing over or resharding. The go-redis helpers recognise
// these replies by their first word.
func TestTransient(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{goredis.ErrClosed, true},
		{goredis.ErrPoolTimeout, true},
		{goredis.ErrPoolExhausted, true},
		{errContention, true},
		{errors.New("LOADING Redis is loading the dataset in memory"), true},
		{errors.New("CLUSTERDOWN The cluster is down"), true},
		{errors.New("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{errors.New("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{errors.New("READONLY You can't write against a read only replica."), true},
		{errors.New("MOVED 3999 127.0.0.1:6381"), true},
		{errors.New("ASK 3999 127.0.0.1:6381"), true},
		{errors.New("ERR max number of clients reached"), true},
		{errors.New("redis: cluster has no nodes"), true},

		{goredis.Nil, false},
		{fednode.ErrNotFound, false},
		{context.Canceled, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: context.Canceled}, false},
		{goredis.ErrCrossSlot, false},
		{errors.New("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{errors.New("ERR Error running script: attempt to index a nil value"), false},
		{errors.New("NOSCRIPT No matching script. Please use EVAL."), false},
	} {
		if got := transient(tt.err); got != tt.want {
			t.Errorf("transient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestWrapNamesTheOperationOnce(t *testing.T) {
	err := error(syscall.ECONNREFUSED)
	wrap(&err, "create user")
	if err.Error() != "redis: create user: unavailable: a service this node depends on is unavailable; try again shortly: connection refused" {
		t.Fatalf("wrapped: %q", err)
	}
	if !errors.Is(err, fednode.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatal("the sentinel and the cause must both be in the chain")
	}
	var nilErr error
	wrap(&nilErr, "user")
	if nilErr != nil {
		t.Fatal("wrap of no error made one")
	}
}
