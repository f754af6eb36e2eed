package fednode

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errDisk = errors.New("disk")

type recipients struct {
	users   map[string]User
	blocked bool
	err     error
}

func (r recipients) User(_ context.Context, name string) (User, error) {
	if r.err != nil {
		return User{}, r.err
	}
	u, ok := r.users[name]
	if !ok {
		return User{}, ErrNotFound
	}
	return u, nil
}

func (r recipients) Blocked(context.Context, string, Address) (bool, error) { return r.blocked, nil }

func TestCheckRecipient(t *testing.T) {
	ctx := context.Background()
	to, from := Address{User: "bob", Domain: "a.example"}, Address{User: "eve", Domain: "b.example"}
	bob := map[string]User{"bob": {Username: "bob"}}
	suspended := map[string]User{"bob": {Username: "bob", SuspendedAt: time.Unix(1, 0)}}
	for _, tc := range []struct {
		name string
		s    recipients
		code string // "" for nil; EInternal for a store error
	}{
		{"takes it", recipients{users: bob}, ""},
		{"no such user", recipients{users: map[string]User{}}, ERecipient},
		{"suspended", recipients{users: suspended}, ERecipientSuspended},
		{"blocks the sender", recipients{users: bob, blocked: true}, ERecipientRefused},
		{"store fails", recipients{err: errDisk}, EInternal},
	} {
		err := CheckRecipient(ctx, tc.s, to, from)
		switch {
		case tc.code == "" && err != nil, tc.code != "" && err == nil, err != nil && ErrorCode(err) != tc.code:
			t.Errorf("%s: %v; want code %q", tc.name, err, tc.code)
		case tc.code == EInternal && !errors.Is(err, errDisk):
			t.Errorf("%s: %v does not wrap the store's error", tc.name, err)
		}
	}
}
