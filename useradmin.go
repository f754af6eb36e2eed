package fednode

import (
	"strings"
	"time"
)

// UserQuery selects a page of users for Store.Users. Names are compared in
// their canonical form; a page holds the users whose names come after
// After, in order, that match every filter set.
type UserQuery struct {
	After    string // the last name of the previous page; "" for the first
	Prefix   string // only names that start with it
	Contains string // only names that contain it
	Role     string // only users of this role; "" for any
	Limit    int    // at most this many users (at least 1)
}

// Matches reports whether u passes q's filters (not its After or Limit).
func (q UserQuery) Matches(u User) bool {
	name := CanonicalUsername(u.Username)
	return strings.HasPrefix(name, CanonicalUsername(q.Prefix)) &&
		strings.Contains(name, CanonicalUsername(q.Contains)) &&
		(q.Role == "" || u.Role == q.Role)
}

// DeletedUser is what a store keeps of a deleted account: its name, so that
// nobody registers it again and passes for the deleted user to peers that
// still hold its messages, and who deleted it when.
type DeletedUser struct {
	Username  string
	DeletedAt time.Time
	By        string
}

// UserDeletion is what Store.DeleteUser removed.
type UserDeletion struct {
	Sessions []string // the ids of the sessions it revoked
	Messages int      // messages deleted with the account
}

// HeldOnlyBy reports whether m, found in the mailbox of the local user
// user, is in no other local user's mailbox: it has no other party at
// domain (the local node) that is not user and whose account exists.
// exists says whether a local account exists. A message still queued for
// delivery is held by the outbox too, and is kept until its delivery ends.
func HeldOnlyBy(m Message, user, domain string, exists func(name string) bool) bool {
	if m.Status == StatusQueued {
		return false
	}
	user = CanonicalUsername(user)
	for _, a := range []Address{m.From, m.To} {
		if a.Domain != domain {
			continue
		}
		if other := CanonicalUsername(a.User); other != user && exists(other) {
			return false
		}
	}
	return true
}
