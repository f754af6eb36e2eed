package redis

import (
	"context"
)

// Meta returns a value the node keeps about itself.
func (s *Store) Meta(ctx context.Context, key string) (_ []byte, err error) {
	defer wrap(&err, "meta")
	b, err := s.c.Get(ctx, s.key("meta", key)).Bytes()
	if err != nil {
		return nil, notFound(err)
	}
	return b, nil
}

// SetMeta stores a value the node keeps about itself.
func (s *Store) SetMeta(ctx context.Context, key string, value []byte) (err error) {
	defer wrap(&err, "set meta")
	return s.c.Set(ctx, s.key("meta", key), value, 0).Err()
}
