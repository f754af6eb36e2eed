package fednode

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the public API: clients match on them, so a
// code is never renamed. node/ maps each to one HTTP status in one place.
const (
	EInvalid         = "invalid_request"     // malformed request in general
	EInvalidJSON     = "invalid_json"        // body is not one well-formed JSON object
	EInvalidEncoding = "invalid_encoding"    // a member is not valid UTF-8
	EUnknownField    = "unknown_field"       // body has a member the endpoint does not take
	EMissingField    = "missing_field"       // a required member is absent
	EInvalidUsername = "invalid_username"    // username breaks the alphabet or length rule
	EInvalidPassword = "invalid_password"    // password breaks the length rule
	EInvalidContent  = "invalid_content"     // message content breaks the content rules
	EInvalidTags     = "invalid_tags"        // tags break the tag rules
	EInvalidAddress  = "invalid_address"     // user@domain does not parse
	EInvalidParam    = "invalid_parameter"   // a query parameter is malformed
	EBodyTooLarge    = "body_too_large"      // request body over its cap
	EUnsupported     = "unsupported_media"   // body is not JSON
	EConflict        = "conflict"            // generic conflict
	ETaken           = "username_taken"      // registration of an existing name
	ENotFound        = "not_found"           // resource absent or not visible to the caller
	ERecipient       = "unknown_recipient"   // message addressed to no such user
	EUnauthorized    = "unauthorized"        // missing, invalid, expired or revoked token
	ECredentials     = "invalid_credentials" // wrong username or password
	ELocked          = "account_locked"      // too many failed logins
	EForbidden       = "forbidden"           // authenticated but not allowed
	EOrigin          = "origin_not_allowed"  // browser Origin not in ALLOWED_ORIGINS
	ERemote          = "federation_disabled" // remote address while federation is off
	EUnavailable     = "unavailable"         // a dependency (store) cannot answer now
	EInternal        = "internal_error"      // anything else; detail is logged, never sent
	ERateLimited     = "rate_limited"        // too many requests
	EMethod          = "method_not_allowed"  // wrong HTTP method on a known path

	// Users managed by the operator (docs/API.md, docs/OPERATIONS.md).
	ESuspended          = "account_suspended"   // login to an account an admin suspended
	ERecipientSuspended = "recipient_suspended" // message to a suspended user, local or federated

	// Blocks, per user (docs/API.md "Blocks"). The message never says that
	// the sender is blocked.
	ERecipientRefused = "recipient_refused" // the recipient blocks the sender or the sender's node

	// Federation inbox refusals (docs/PROTOCOL.md).
	ESigMissing     = "signature_missing"         // no Signature header
	ESigMalformed   = "signature_malformed"       // Signature header does not parse
	ESigHeaders     = "signature_headers_missing" // a required header is not signed
	ESigAlgorithm   = "signature_algorithm"       // algorithm not allowed for the key type
	ESigInvalid     = "signature_invalid"         // signature does not verify
	EUnknownKey     = "unknown_key"               // keyId is not a key of the sending node
	EKeyUnavailable = "key_unavailable"           // the sender's node document cannot be fetched now
	EKeyIDMismatch  = "key_id_mismatch"           // keyId host is not exactly the envelope's sender
	EDigest         = "digest_mismatch"           // Digest missing or not the body's SHA-256
	EDate           = "date_out_of_window"        // Date missing or too far from now
	EWrongHost      = "wrong_host"                // Host is not this node
	EWrongNode      = "wrong_node"                // envelope addressed to another node
	EEnvelope       = "invalid_envelope"          // envelope does not decode or breaks a rule
	EPeerBlocked    = "peer_blocked"              // this node does not federate with the sender
	EBanned         = "banned"                    // this client is banned for a while

	// Registration modes and the proof-of-work challenge (docs/API.md).
	ERegistrationClosed = "registration_closed" // REGISTRATION_MODE=closed
	EInviteRequired     = "invite_required"     // REGISTRATION_MODE=invite and no invite given
	EInviteInvalid      = "invite_invalid"      // no such invite code (never issued, or revoked)
	EInviteUsed         = "invite_used"         // the invite code was already used
	EInviteExpired      = "invite_expired"      // the invite code is past its expiry
	EChallengeRequired  = "challenge_required"  // this login or registration needs a solved challenge
	EChallengeInvalid   = "challenge_invalid"   // the solution is malformed, wrong, forged, expired or used
)

// Error is the one error type that reaches users. Code is stable, Message is
// safe to show, Field names the offending input when there is one. Internal
// causes are wrapped, logged by node/, and never serialised.
type Error struct {
	Code    string
	Message string
	Field   string
	// RetryAfter, when positive, is the number of seconds a client should
	// wait before trying again (sent as Retry-After).
	RetryAfter int
	Err        error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Field != "" {
		s = e.Code + ": " + e.Field + ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an *Error naming the offending field.
func FieldError(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorMessage returns the safe message of the first *Error in err's chain,
// or a generic one: never the text of an error that is not an *Error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorCode returns the code of the first *Error in err's chain, or EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// Sentinel errors the stores return; callers test them with errors.Is.
var (
	ErrNotFound = &Error{Code: ENotFound, Message: "not found"}
	ErrTaken    = &Error{Code: ETaken, Message: "that username is taken"}
)

// ErrDuplicate is returned when a message id is already stored.
var ErrDuplicate = &Error{Code: EConflict, Message: "a message with that id already exists"}

// ErrUnavailable is wrapped by every error of a dependency that cannot
// answer now but may shortly: Redis unreachable, restarting, loading its
// data, failing over, or slower than its timeout. The adapter that meets
// the failure marks it, so callers test errors.Is and never an error's
// text. Its code answers 503, and clients retry after RetryAfter.
var ErrUnavailable = &Error{Code: EUnavailable, Message: "a service this node depends on is unavailable; try again shortly", RetryAfter: 2}

// ErrStoreFailed is wrapped by every write a store refuses after it failed:
// a crash inside its committer, a commit whose outcome is unknown, or a read
// that found the file damaged. Going on could lose what clients were told is
// stored, so writes stop until the operator acts; reads go on where they
// can. Its code answers 503, so clients retry later and readiness says why.
var ErrStoreFailed = &Error{Code: EUnavailable, Message: "the store has failed and refuses writes until the operator acts; see the log", RetryAfter: 30}
