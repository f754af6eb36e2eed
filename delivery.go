package fednode

import "time"

// Job is one message waiting in the outbox for delivery to a peer node.
// Jobs of one peer are kept in the order they were accepted.
type Job struct {
	Seq        uint64 // position in the peer's queue
	Peer       string // the recipient's node domain
	MessageID  string
	Pair       string // "from|to": deliveries of one pair keep their order
	EnqueuedAt time.Time
	Attempts   int
	LastError  string // the last failed attempt, in words
	LastCode   string // the last failed attempt's reason code (Delivery*)
}

// JobResult ends a job: Status is StatusDelivered or StatusFailed (with a
// Reason and its Code). A failed job is kept as a dead letter for the
// operator.
type JobResult struct {
	Seq       uint64
	MessageID string
	Status    string
	Reason    string
	Code      string
}

// DeadLetter is a message the node gave up delivering.
type DeadLetter struct {
	MessageID string
	Peer      string
	Reason    string
	Code      string
	Attempts  int
	FailedAt  time.Time
}

// DeadLetterFilter picks dead letters: the one of MessageID, or all those
// of Peer, or (both empty) all of them.
type DeadLetterFilter struct {
	MessageID string
	Peer      string
}

// Matches reports whether the filter picks d.
func (f DeadLetterFilter) Matches(d DeadLetter) bool {
	return (f.MessageID == "" || d.MessageID == f.MessageID) && (f.Peer == "" || d.Peer == f.Peer)
}

// Delivery reason codes: why a remote message failed (Message.ReasonCode,
// DeadLetter.Code), or why its last attempt did (Job.LastCode). They are
// part of the public API (docs/API.md, docs/OPERATIONS.md "Delivery,
// retries and dead letters") and never renamed.
const (
	// Permanent: the message fails at once.
	DeliveryPolicyRefused    = "policy_refused"        // this node's federation policy does not allow the peer
	DeliveryPrivateAddress   = "private_address"       // the peer resolves to a non-public address, which is not allowed
	DeliveryInvalidDocument  = "invalid_node_document" // the peer serves a node document that does not validate
	DeliveryUnknownRecipient = ERecipient              // the peer has no such user
	DeliveryRecipientRefused = ERecipientRefused       // the recipient does not accept messages from the sender
	DeliveryRefused          = "peer_refused"          // the peer refused it for good (its code is in the reason)
	DeliveryGaveUp           = "gave_up"               // retried for OUTBOX_GIVE_UP_AFTER without success
	// Temporary: the message is retried with backoff.
	DeliveryUnreachable         = "peer_unreachable"          // no answer: DNS, connection, TLS or timeout
	DeliveryUnavailable         = "peer_unavailable"          // the peer refused the request for now (5xx, 429, …)
	DeliveryDeferred            = "peer_deferred"             // the peer asked to send the message again later
	DeliveryUnwrapFailed        = "unwrap_failed"             // the peer could not unwrap its key; its keys were refetched
	DeliveryDocumentUnavailable = "node_document_unavailable" // the peer's node document cannot be fetched now
	DeliveryInternal            = "internal_error"            // this node could not prepare the delivery (store, keys)
)
