package federation

import (
	"errors"
	"fmt"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/strictjson"
)

// Per-message statuses of an inbox answer (docs/PROTOCOL.md 2.4).
const (
	StatusAccepted  = "accepted"  // stored now
	StatusDuplicate = "duplicate" // stored before: a redelivery or a replay
	StatusRefused   = "refused"   // refused for good, except CodeUnwrapFailed
	StatusRetry     = "retry"     // the receiver could not process it now
)

// Per-message refusal codes that only the inbox answers. The content rules
// use fednode's codes (invalid_content, invalid_tags, unknown_recipient),
// and so does a recipient an admin suspended (recipient_suspended) or a
// recipient who blocks the sender or its node (recipient_refused).
const (
	CodeSenderMismatch    = "sender_mismatch"
	CodeRecipientMismatch = "recipient_mismatch"
	CodeIDConflict        = "id_conflict"
	CodeUnwrapFailed      = "unwrap_failed" // the sender refetches the receiver's keys and retries
	CodeOpenFailed        = "open_failed"
)

// Result is the receiver's verdict on one message of an accepted delivery.
type Result struct {
	ID      string `json:"id" strictjson:"required"`
	Status  string `json:"status" strictjson:"required"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Answer is the body of a 2xx answer to a delivery: one result per message.
type Answer struct {
	Results []Result `json:"results" strictjson:"required"`
}

// ErrorBody is the body of a refusal, on the REST API and between nodes.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code" strictjson:"required"`
		Message string `json:"message" strictjson:"required"`
		Field   string `json:"field,omitempty"`
	} `json:"error" strictjson:"required"`
}

// DecodeAnswer parses a peer's 2xx answer strictly (see strictjson).
func DecodeAnswer(raw []byte) (Answer, error) {
	var a Answer
	if err := decodeStrict(raw, &a, "inbox answer"); err != nil {
		return Answer{}, err
	}
	return a, nil
}

// ErrorCode is the code of a peer's refusal body, or "" when the body is
// not one.
func ErrorCode(raw []byte) string {
	var e ErrorBody
	if decodeStrict(raw, &e, "error") != nil {
		return ""
	}
	return e.Error.Code
}

// decodeStrict decodes peer JSON with the one strict decoder, turning its
// refusal into an error that names what was being read.
func decodeStrict(raw []byte, dst any, what string) error {
	err := strictjson.Decode(raw, dst)
	var fe *fednode.Error
	if errors.As(err, &fe) {
		return fmt.Errorf("%s: %s", what, fe.Message)
	}
	return err
}
