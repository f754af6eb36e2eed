package node

import "context"

// Topics carried between the replicas of a node.
const (
	topicNotify = "notify" // payload: usernames whose mailbox grew
	topicRevoke = "revoke" // payload: revoked session ids
	topicBans   = "bans"   // no payload: reload the ban list
)

// broker carries events to every replica of the node, this one included.
// Redis pub/sub carries them between replicas; a single node on the
// embedded store delivers them in process.
type broker interface {
	Publish(ctx context.Context, topic string, payload []string) error
	// Run delivers events to handle until ctx ends.
	Run(ctx context.Context, handle func(topic string, payload []string))
}

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
