package fednode

import "time"

// PeerQueue is one peer's outbox queue at a glance.
type PeerQueue struct {
	Peer   string
	Depth  int       // jobs waiting
	Oldest time.Time // EnqueuedAt of the first job in the queue
}

// QueueStats is the outbox at a glance, for the metrics: every peer with
// jobs waiting, in no particular order, and how many dead letters are kept.
type QueueStats struct {
	Peers       []PeerQueue
	DeadLetters int
}
