package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
)

// statusOf is the one place where error codes become HTTP statuses.
var statusOf = map[string]int{
	fednode.EInvalid:            http.StatusBadRequest,
	fednode.EInvalidJSON:        http.StatusBadRequest,
	fednode.EUnknownField:       http.StatusBadRequest,
	fednode.EInvalidEncoding:    http.StatusBadRequest,
	fednode.EMissingField:       http.StatusBadRequest,
	fednode.EInvalidUsername:    http.StatusBadRequest,
	fednode.EInvalidPassword:    http.StatusBadRequest,
	fednode.EInvalidContent:     http.StatusBadRequest,
	fednode.EInvalidTags:        http.StatusBadRequest,
	fednode.EInvalidAddress:     http.StatusBadRequest,
	fednode.EInvalidParam:       http.StatusBadRequest,
	fednode.EBodyTooLarge:       http.StatusRequestEntityTooLarge,
	fednode.EUnsupported:        http.StatusUnsupportedMediaType,
	fednode.EConflict:           http.StatusConflict,
	fednode.ETaken:              http.StatusConflict,
	fednode.ENotFound:           http.StatusNotFound,
	fednode.ERecipient:          http.StatusUnprocessableEntity,
	fednode.ERemote:             http.StatusUnprocessableEntity,
	fednode.EUnauthorized:       http.StatusUnauthorized,
	fednode.ECredentials:        http.StatusUnauthorized,
	fednode.ELocked:             http.StatusTooManyRequests,
	fednode.ERateLimited:        http.StatusTooManyRequests,
	fednode.EForbidden:          http.StatusForbidden,
	fednode.EOrigin:             http.StatusForbidden,
	fednode.EMethod:             http.StatusMethodNotAllowed,
	fednode.ESuspended:          http.StatusForbidden,
	fednode.ERecipientSuspended: http.StatusUnprocessableEntity,
	fednode.ERecipientRefused:   http.StatusUnprocessableEntity,
	fednode.EUnavailable:        http.StatusServiceUnavailable,
	fednode.EInternal:           http.StatusInternalServerError,
	fednode.ESigMissing:         http.StatusUnauthorized,
	fednode.ESigMalformed:       http.StatusBadRequest,
	fednode.ESigHeaders:         http.StatusBadRequest,
	fednode.ESigAlgorithm:       http.StatusBadRequest,
	fednode.ESigInvalid:         http.StatusUnauthorized,
	fednode.EUnknownKey:         http.StatusUnauthorized,
	fednode.EKeyUnavailable:     http.StatusUnauthorized,
	fednode.EKeyIDMismatch:      http.StatusBadRequest,
	fednode.EDigest:             http.StatusBadRequest,
	fednode.EDate:               http.StatusUnauthorized,
	fednode.EWrongHost:          http.StatusMisdirectedRequest,
	fednode.EWrongNode:          http.StatusMisdirectedRequest,
	fednode.EEnvelope:           http.StatusBadRequest,
	fednode.EPeerBlocked:        http.StatusForbidden,
	fednode.EBanned:             http.StatusForbidden,

	fednode.ERegistrationClosed: http.StatusForbidden,
	fednode.EInviteRequired:     http.StatusForbidden,
	fednode.EInviteInvalid:      http.StatusForbidden,
	fednode.EInviteUsed:         http.StatusForbidden,
	fednode.EInviteExpired:      http.StatusForbidden,
	fednode.EChallengeRequired:  http.StatusForbidden,
	fednode.EChallengeInvalid:   http.StatusForbidden,

	fednode.EInvalidE2E:      http.StatusBadRequest,
	fednode.EInvalidUserKeys: http.StatusBadRequest,
	fednode.EPeerKeysInvalid: http.StatusBadGateway,
}

// unavailable reports whether err means a dependency could not answer in
// time: the client should retry, and 503 says so. The adapters (Redis,
// Vault, the shared limiter) classify their own failures by wrapping
// fednode.ErrUnavailable; a deadline that ran out is the same thing.
func unavailable(err error) bool {
	return errors.Is(err, fednode.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// apiError is the REST API's error body: federation.ErrorBody's members
// and the request's id, which the user can quote to the operator (the
// access log has it). Peers read the inbox's refusals strictly as
// federation.ErrorBody, so those keep to it (docs/PROTOCOL.md); the id is
// in their X-Request-Id header.
type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Field     string `json:"field,omitempty"`
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}

// writeError answers err as {"error":{"code","message","field","request_id"}}.
// An error that is not an *fednode.Error is internal: it is logged with
// the request and answered with a generic message, never its text.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *fednode.Error
	if !errors.As(err, &e) && errors.Is(err, context.Canceled) {
		return // the client went away; nobody to answer
	}
	switch {
	case unavailable(err):
		// A dependency (Redis, Vault, the disk) cannot answer: the operator
		// sees why in the log; the client is told to retry.
		log.WarnContext(r.Context(), "dependency unavailable", "request_id", requestIDFromContext(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		if e == nil {
			e = fednode.ErrUnavailable
		}
	case e == nil:
		log.ErrorContext(r.Context(), "internal error", "request_id", requestIDFromContext(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		e = &fednode.Error{Code: fednode.EInternal, Message: "internal error; the operator can find it in the logs"}
	case e.Err != nil:
		log.DebugContext(r.Context(), "request refused", "code", e.Code, "path", r.URL.Path, "err", e.Err)
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fednode"`)
	}
	if strings.HasPrefix(r.URL.Path, "/federation/") { // the inbox, and peers' reads of user keys
		var body federation.ErrorBody
		body.Error.Code, body.Error.Message, body.Error.Field = e.Code, e.Message, e.Field
		writeJSON(w, status, body)
		return
	}
	var body apiError
	body.Error.Code, body.Error.Message, body.Error.Field = e.Code, e.Message, e.Field
	body.Error.RequestID = requestIDFromContext(r.Context())
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
