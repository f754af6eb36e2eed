package fednode

import "time"

// Roles a user can have.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// User is a local account. Username keeps the case it was registered with;
// the store keys it by CanonicalUsername.
type User struct {
	Username     string
	PasswordHash string // PHC-formatted argon2id hash
	Role         string
	CreatedAt    time.Time

	// Suspension, set by an admin: a suspended user cannot log in, holds
	// no session, and is sent nothing (see docs/OPERATIONS.md). Zero
	// SuspendedAt means not suspended.
	SuspendedAt   time.Time `json:",omitzero"`
	SuspendedBy   string    `json:",omitempty"`
	SuspendReason string    `json:",omitempty"`
}

// Suspended reports whether an admin has suspended the user.
func (u User) Suspended() bool { return !u.SuspendedAt.IsZero() }

// Session is one issued token. A token is honoured only while its session
// exists, so revoking is deleting.
type Session struct {
	ID        string // the token's jti
	Username  string // canonical
	IssuedAt  time.Time
	ExpiresAt time.Time
}
