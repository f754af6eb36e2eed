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
}

// Session is one issued token. A token is honoured only while its session
// exists, so revoking is deleting.
type Session struct {
	ID        string // the token's jti
	Username  string // canonical
	IssuedAt  time.Time
	ExpiresAt time.Time
}
