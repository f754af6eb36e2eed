package storetest

import (
	"context"
	"testing"

	"github.com/fednode/fednode"
)

// testSchemaVersion: a store created fresh is of the current schema
// version, kept where fednode.SchemaKey says, so a later fednode knows
// which steps to run and an older one knows to refuse it.
func testSchemaVersion(t *testing.T, s fednode.Store) {
	b, err := s.Meta(context.Background(), fednode.SchemaKey)
	if err != nil {
		t.Fatalf("a fresh store has no schema version: %v", err)
	}
	if v, err := fednode.ParseSchemaVersion(b); err != nil || v != fednode.SchemaVersion {
		t.Fatalf("a fresh store's schema version is %q (%v), want %d", b, err, fednode.SchemaVersion)
	}
}

// StoredSchemaVersion is the schema version s holds, as stored.
func StoredSchemaVersion(tb testing.TB, s fednode.Store) string {
	tb.Helper()
	b, err := s.Meta(context.Background(), fednode.SchemaKey)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
