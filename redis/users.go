package redis

import (
	"context"
	"encoding/json"

	"github.com/fednode/fednode"
)

// CreateUser stores a new user, refusing a name taken in any letter case.
func (s *Store) CreateUser(ctx context.Context, u fednode.User) (err error) {
	defer wrap(&err, "create user")
	b, _ := json.Marshal(u)
	name := fednode.CanonicalUsername(u.Username)
	ok, err := createUser.Run(ctx, s.c, []string{s.key("u", name), s.key("ud", name), s.key("uidx")}, b, name).Int()
	if err != nil {
		return err
	}
	if ok == 0 {
		return fednode.ErrTaken
	}
	return nil
}

// User returns the user with that name in any letter case.
func (s *Store) User(ctx context.Context, username string) (_ fednode.User, err error) {
	defer wrap(&err, "user")
	var u fednode.User
	err = getJSON(ctx, s.c, s.key("u", fednode.CanonicalUsername(username)), &u)
	return u, err
}

// UpdateUser applies fn to the stored user atomically.
func (s *Store) UpdateUser(ctx context.Context, username string, fn func(*fednode.User) error) (err error) {
	defer wrap(&err, "update user")
	var u fednode.User
	return s.update(ctx, s.key("u", fednode.CanonicalUsername(username)), &u, func() error { return fn(&u) })
}
