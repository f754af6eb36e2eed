package redis

import (
	"context"
	"encoding/json"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// Broker carries events between the replicas of one node over Redis
// pub/sub, on one channel per namespace. Pub/sub is at-most-once: the node
// uses it to wake sockets and close revoked ones at once, and keeps a
// periodic check for what a lost event would have said.
type Broker struct {
	c       goredis.UniversalClient
	channel string
	log     *slog.Logger
}

// NewBroker returns a broker on c for namespace ns.
func NewBroker(c goredis.UniversalClient, ns string, log *slog.Logger) *Broker {
	return &Broker{c: c, channel: Part(ns) + ":events", log: log}
}

type event struct {
	Topic   string   `json:"t"`
	Payload []string `json:"p"`
}

// Publish sends an event to every replica.
func (b *Broker) Publish(ctx context.Context, topic string, payload []string) (err error) {
	defer wrap(&err, "publish")
	msg, _ := json.Marshal(event{topic, payload})
	return b.c.Publish(ctx, b.channel, msg).Err()
}

// Run subscribes and hands each event to handle until ctx ends; go-redis
// resubscribes by itself after a connection loss.
func (b *Broker) Run(ctx context.Context, handle func(topic string, payload []string)) {
	sub := b.c.Subscribe(ctx, b.channel)
	go func() {
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				var e event
				if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
					b.log.Warn("broker: bad event", "err", err)
					continue
				}
				handle(e.Topic, e.Payload)
			}
		}
	}()
}
