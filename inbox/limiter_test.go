package inbox

import (
	"testing"
	"time"
)

func TestWindowLimiter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l := NewWindowLimiter(3, time.Minute, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if !l.Allow("a") {
			t.Fatalf("event %d refused", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("fourth event in the window allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another key is limited separately")
	}
	// Half a window later the previous window still weighs half: 3*0.5 = 1.5 < 3.
	now = now.Add(90 * time.Second)
	if !l.Allow("a") {
		t.Fatal("the sliding window must let events through as the old ones age")
	}
	now = now.Add(5 * time.Minute)
	for i := 0; i < 3; i++ {
		if !l.Allow("a") {
			t.Fatal("after a quiet spell the full limit is back")
		}
	}
}
