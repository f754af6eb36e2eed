package fednode

import (
	"sort"
	"time"
)

// Invite is a single-use code an admin issues so that one person may
// register while REGISTRATION_MODE=invite. It is used when an account is
// created with it (UsedBy, UsedAt set), and refused after ExpiresAt.
type Invite struct {
	Code      string
	CreatedBy string // canonical username of the admin who issued it
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedBy    string // canonical username registered with it; empty while unused
	UsedAt    time.Time
}

// Used reports whether an account was created with the invite.
func (i Invite) Used() bool { return i.UsedBy != "" }

// Expired reports whether the invite is past its expiry at now.
func (i Invite) Expired(now time.Time) bool { return !now.Before(i.ExpiresAt) }

// Usable returns nil for an invite that may be used at now, else the
// refusal: ErrInviteUsed or ErrInviteExpired.
func (i Invite) Usable(now time.Time) error {
	switch {
	case i.Used():
		return ErrInviteUsed
	case i.Expired(now):
		return ErrInviteExpired
	}
	return nil
}

// SortInvites orders invites as Store.Invites returns them: by CreatedAt,
// then Code.
func SortInvites(l []Invite) {
	sort.Slice(l, func(i, j int) bool {
		if !l[i].CreatedAt.Equal(l[j].CreatedAt) {
			return l[i].CreatedAt.Before(l[j].CreatedAt)
		}
		return l[i].Code < l[j].Code
	})
}

// Refusals of an invite, from CreateUserWithInvite; test them with
// errors.Is. Each has its own stable code (docs/API.md).
var (
	ErrInviteUnknown = &Error{Code: EInviteInvalid, Field: "invite", Message: "no such invite code"}
	ErrInviteUsed    = &Error{Code: EInviteUsed, Field: "invite", Message: "that invite code has already been used"}
	ErrInviteExpired = &Error{Code: EInviteExpired, Field: "invite", Message: "that invite code has expired"}
)
