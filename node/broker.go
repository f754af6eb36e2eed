package node

import "context"

// Topics carried between the replicas of a node.
const (
	TopicNotify = "notify" // payload: usernames whose mailbox grew
	TopicRevoke = "revoke" // payload: revoked session ids
	TopicBans   = "bans"   // no payload: reload the ban list
	TopicStatus = "status" // payload: statusEvent JSON objects, for their senders' sockets
	TopicWake   = "wake"   // payload: peer domains whose outbox backoff ends now
)

// Broker carries events to every replica of the node, this one included.
// Redis pub/sub carries them between replicas (redis.Broker); a single node
// on the embedded store delivers them in process (NewLocalBroker).
type Broker interface {
	Publish(ctx context.Context, topic string, payload []string) error
	// Run delivers events to handle until ctx ends.
	Run(ctx context.Context, handle func(topic string, payload []string))
}

// NewLocalBroker returns the broker of a node that runs as one process.
func NewLocalBroker() Broker { return &localBroker{} }

type localBroker struct{ handle func(string, []string) }

func (b *localBroker) Publish(ctx context.Context, topic string, payload []string) error {
	if b.handle != nil {
		b.handle(topic, payload)
	}
	return nil
}

func (b *localBroker) Run(ctx context.Context, handle func(string, []string)) {
	b.handle = handle
}
