package outbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
)

// This file says why a delivery failed, once: each failure gets a stable
// reason code (fednode.Delivery*) and a sentence for the sender and the
// operator, and is either permanent (the message fails at once) or
// temporary (the peer backs off). docs/OPERATIONS.md "Delivery, retries
// and dead letters" lists the same table.

// attemptError is the outcome of a request that delivered nothing, as the
// outbox's retry policy sees it.
type attemptError struct {
	code       string // a fednode.Delivery* code
	reason     string // a sentence, with the detail that helps
	retryAfter time.Duration
	permanent  bool
}

func (e *attemptError) Error() string { return e.reason }

// internalFailure is a failure of this node (its store, its keys): the
// peer is not to blame, and the message is retried.
func internalFailure(what string, err error) *attemptError {
	return &attemptError{code: fednode.DeliveryInternal, reason: fmt.Sprintf("this node could not %s: %v", what, err)}
}

// policyRefused: the federation policy no longer allows the peer.
func policyRefused(peer string) *attemptError {
	return &attemptError{code: fednode.DeliveryPolicyRefused, permanent: true,
		reason: fmt.Sprintf("this node does not federate with %s (its federation policy refuses it)", peer)}
}

// privateAddress: the peer resolves only to addresses the node may not
// reach. It is permanent: retrying reaches the same addresses, and an
// operator who means it sets FEDERATION_ALLOW_PRIVATE and redrives.
func privateAddress(peer string) *attemptError {
	return &attemptError{code: fednode.DeliveryPrivateAddress, permanent: true,
		reason: fmt.Sprintf("%s resolves to a private, loopback or otherwise non-public address, which this node may not connect to", peer)}
}

// documentFailure classifies a failure to get the peer's node document: a
// document the peer serves that does not validate is permanent (it is the
// peer's published configuration, not an outage); anything else (no
// answer, an HTTP error) is retried.
func documentFailure(peer string, err error) *attemptError {
	switch {
	case errors.Is(err, federation.ErrForbiddenAddress):
		return privateAddress(peer)
	case errors.Is(err, federation.ErrInvalidDocument):
		return &attemptError{code: fednode.DeliveryInvalidDocument, permanent: true,
			reason: fmt.Sprintf("%s does not publish a valid node document: %v", peer, err)}
	}
	return &attemptError{code: fednode.DeliveryDocumentUnavailable, reason: fmt.Sprintf("%s's node document cannot be fetched now: %v", peer, err)}
}

// attemptOf maps a failed delivery onto the retry policy: the peer's
// verdict (temporary or for good, Retry-After) is federation's to read.
func attemptOf(peer string, err error) *attemptError {
	var de *federation.DeliveryError
	switch {
	case errors.Is(err, federation.ErrForbiddenAddress):
		return privateAddress(peer)
	case !errors.As(err, &de):
		return internalFailure("deliver", err)
	case de.Status == 0 && !de.Temporary: // the request cannot even be built: the inbox URL is unusable
		return &attemptError{code: fednode.DeliveryInvalidDocument, permanent: true, reason: fmt.Sprintf("the inbox %s publishes cannot be used: %s", peer, de.Reason)}
	case de.Status == 0:
		return &attemptError{code: fednode.DeliveryUnreachable, retryAfter: de.RetryAfter, reason: fmt.Sprintf("%s could not be reached: %s", peer, de.Reason)}
	case de.Temporary:
		return &attemptError{code: fednode.DeliveryUnavailable, retryAfter: de.RetryAfter, reason: fmt.Sprintf("%s did not take the messages now: %s", peer, de.Reason)}
	}
	return &attemptError{code: fednode.DeliveryRefused, permanent: true, reason: fmt.Sprintf("refused by %s for good: %s", peer, de.Reason)}
}

// messageRefused is a peer's per-message refusal, always for good (the
// caller handles unwrap_failed, the one exception).
func messageRefused(peer string, r federation.Result) (code, reason string) {
	if r.Code == fednode.ERecipient {
		return fednode.DeliveryUnknownRecipient, fmt.Sprintf("refused by %s: unknown_recipient (it has no such user)", peer)
	}
	if r.Code == fednode.ERecipientRefused {
		return fednode.DeliveryRecipientRefused, fmt.Sprintf("refused by %s: recipient_refused (the recipient does not accept messages from you)", peer)
	}
	return fednode.DeliveryRefused, fmt.Sprintf("refused by %s: %s", peer, r.Code)
}

// gaveUp is the failure of a message retried for too long.
func gaveUp(after time.Duration, last *attemptError) *attemptError {
	return &attemptError{code: fednode.DeliveryGaveUp, permanent: true, reason: fmt.Sprintf("gave up after %s: %s", after, last.reason)}
}
