package fednode

import (
	"fmt"
	"strconv"
)

// The store's schema version.
//
// Both backends keep the version of the format they were written in, as a
// decimal number under the Meta key SchemaKey (bbolt: the meta bucket;
// Redis: "{ns}:meta:schema_version"). A store with no such key is version
// 0, the format of every fednode before versions were kept; a store
// created fresh is given SchemaVersion at once.
//
// At open, each backend refuses a store of a newer version than its own
// (SchemaTooNewError: a newer fednode wrote it, and an older one must not
// write old-format records into it) and upgrades an older one one version
// at a time, logging each step. The steps are each backend's list
// `migrations` (bolt/schema.go, redis/schema.go): migrations[v] takes the
// store from v to v+1. To change the format, append a step to BOTH lists
// (a no-op step where a backend's format does not change), raise
// SchemaVersion, and add a fixture of the format being left behind (see
// testdata/README.md).
const SchemaVersion = 3

// SchemaKey is the Meta key both backends keep the schema version under.
const SchemaKey = "schema_version"

// SchemaTooNewError is a store written by a newer fednode than this one.
type SchemaTooNewError struct {
	Store     string // what the store is: its file, or Redis and its namespace
	Found     int    // the store's schema version
	Supported int    // this fednode's
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("%s has store schema version %d, newer than this fednode's %d: a newer fednode upgraded it, and this one cannot use it safely. "+
		"Run the newer fednode, or, to go back, restore the backup taken before the upgrade (see \"Upgrades\" in docs/OPERATIONS.md)",
		e.Store, e.Found, e.Supported)
}

// ParseSchemaVersion reads a stored schema version.
func ParseSchemaVersion(b []byte) (int, error) {
	v, err := strconv.Atoi(string(b))
	if err != nil || v < 0 {
		return 0, fmt.Errorf("the stored schema version %q is not a version number", b)
	}
	return v, nil
}

// FormatSchemaVersion is a schema version as it is stored.
func FormatSchemaVersion(v int) []byte { return []byte(strconv.Itoa(v)) }

// SchemaUpgraded is the log message of one step of a store's upgrade.
func SchemaUpgraded(from int) string {
	return fmt.Sprintf("store schema upgraded from %d to %d", from, from+1)
}
