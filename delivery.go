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
	LastError  string
}

// JobResult ends a job: Status is StatusDelivered or StatusFailed (with a
// Reason). A failed job is kept as a dead letter for the operator.
type JobResult struct {
	Seq       uint64
	MessageID string
	Status    string
	Reason    string
}

// DeadLetter is a message the node gave up delivering.
type DeadLetter struct {
	MessageID string
	Peer      string
	Reason    string
	Attempts  int
	FailedAt  time.Time
}
