package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/keys"
)

// MaxRetryAfter is the longest wait a peer's Retry-After can ask of a
// sender (docs/PROTOCOL.md 2.5). Beyond it a sender retries anyway: a peer
// cannot park our queue for days with one header, and GiveUpAfter still
// decides when a message is abandoned.
const MaxRetryAfter = 24 * time.Hour

// DeliveryError is why a delivery got no usable answer: the peer refused
// the whole envelope, the answer did not read, or no answer came.
type DeliveryError struct {
	// Status is the peer's HTTP status, 0 when no answer was read (the
	// request could not be built, signed or sent).
	Status int
	// Code is the code of the peer's refusal body, "" when it sent none.
	Code string
	// RetryAfter is the wait the peer's Retry-After asks for, from when
	// its answer came: 0 when absent, malformed or past, at most
	// MaxRetryAfter.
	RetryAfter time.Duration
	// Temporary reports whether the envelope may be sent again later
	// (docs/PROTOCOL.md 2.5); false means it is refused for good.
	Temporary bool
	// Reason says what happened, for logs and dead letters: "HTTP 503
	// unavailable", "post: …", "sign: …", "answer: …".
	Reason string
	// Err is the underlying error, if any.
	Err error
}

func (e *DeliveryError) Error() string { return "federation: deliver: " + e.Reason }

func (e *DeliveryError) Unwrap() error { return e.Err }

// Deliver posts env to a peer's inbox and returns the peer's answer, one
// result per message it judged (docs/PROTOCOL.md 2.4). The request is
// signed with kr's current signing key, named as a key of env.FromNode
// (SignRequest), so the keyId's domain is the envelope's sender by
// construction; kr must be that node's keyring. now is the caller's clock,
// read for the Date header and again, when the answer comes, for a
// Retry-After given as a date.
//
// client must not follow redirects (NewHTTPClient does not): a 3xx is an
// answer, retried later like a 5xx. The answer body is read up to
// MaxResponseBytes and a 2xx one is decoded strictly (DecodeAnswer). Every
// error is a *DeliveryError whose Temporary follows docs/PROTOCOL.md 2.5.
func Deliver(ctx context.Context, client *http.Client, kr keys.Keyring, inbox *url.URL, env Envelope, now func() time.Time) (Answer, error) {
	body, err := json.Marshal(env)
	if err != nil {
		return Answer{}, &DeliveryError{Temporary: true, Reason: "marshal: " + err.Error(), Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, inbox.String(), bytes.NewReader(body))
	if err != nil {
		return Answer{}, &DeliveryError{Reason: err.Error(), Err: err}
	}
	if err := SignRequest(ctx, kr, env.FromNode, req, body, now()); err != nil {
		return Answer{}, &DeliveryError{Temporary: true, Reason: "sign: " + err.Error(), Err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, &DeliveryError{Temporary: true, Reason: "post: " + err.Error(), Err: err}
	}
	defer resp.Body.Close()
	raw, readErr := ReadCapped(resp, MaxResponseBytes)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		code := ErrorCode(raw)
		return Answer{}, &DeliveryError{
			Status:     resp.StatusCode,
			Code:       code,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now()),
			Temporary:  temporary(resp.StatusCode, code),
			Reason:     fmt.Sprintf("HTTP %d %s", resp.StatusCode, code),
		}
	}
	if readErr != nil {
		return Answer{}, &DeliveryError{Status: resp.StatusCode, Temporary: true, Reason: "answer: " + readErr.Error(), Err: readErr}
	}
	a, err := DecodeAnswer(raw)
	if err != nil {
		return Answer{}, &DeliveryError{Status: resp.StatusCode, Temporary: true, Reason: err.Error(), Err: err}
	}
	return a, nil
}

// temporary reports whether a refusal of a whole envelope, a non-2xx
// status with its body's code, is worth retrying (docs/PROTOCOL.md 2.5):
// 401 (the receiver could not fetch or match our key yet), 408, 429, every
// 5xx, every 3xx (never followed) and a 403 with code banned (an IP ban
// that ends). Any other 4xx refuses the envelope for good.
func temporary(status int, code string) bool {
	switch {
	case status < 400, status >= 500:
		return true
	case status == http.StatusUnauthorized, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return true
	case status == http.StatusForbidden:
		return code == fednode.EBanned
	}
	return false
}

// maxRetryAfterSeconds is MaxRetryAfter in delay-seconds.
const maxRetryAfterSeconds = int64(MaxRetryAfter / time.Second)

// retryAfter reads a Retry-After header value (RFC 9110 10.2.3), delay
// seconds or an HTTP date, as a wait from now: 0 when it is absent,
// malformed, zero or already past, and at most MaxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if s <= 0 { // a negative number, or one too negative to parse
			return 0
		}
		return time.Duration(min(s, maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}
