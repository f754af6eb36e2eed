package redis

import (
	"context"
)

// Meta returns a value the node keeps about itself.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.key("meta", key)).Bytes()
	return b, notFound(err)
}

// SetMeta stores a value the node keeps about itself.
func (s *Store) SetMeta(ctx context.Context, key string, value []byte) error {
	return s.c.Set(ctx, s.key("meta", key), value, 0).Err()
}
