package bolt

import (
	"fmt"
	"testing"
	"time"
)

// TestExpiredLeasesAreSwept: leases taken once and never released (spent
// challenges) do not pile up in memory.
func TestExpiredLeasesAreSwept(t *testing.T) {
	var l leases
	for i := range 5000 {
		l.acquire(fmt.Sprint("challenge:", i), "x", time.Nanosecond)
	}
	if n := len(l.m); n > 1024 {
		t.Fatalf("%d expired leases kept", n)
	}
	if !l.acquire("challenge:1", "y", time.Minute) || l.acquire("challenge:1", "z", time.Minute) {
		t.Fatal("a sweep broke the leases")
	}
}
