package outbox

import (
	"fmt"
	"testing"
	"time"
)

func TestBackoffSchedule(t *testing.T) {
	base, max := 30*time.Second, 6*time.Hour
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}
	for n, w := range want {
		for i := 0; i < 200; i++ {
			d := Backoff(base, max, n+1)
			if d < w*8/10 || d > w*12/10 {
				t.Fatalf("retry %d: %v outside %v ±20%%", n+1, d, w)
			}
		}
	}
	for i := 0; i < 200; i++ {
		if d := Backoff(base, max, 40); d < max*8/10 || d > max*12/10 {
			t.Fatalf("late retries must stay at the cap ±20%%: %v", d)
		}
	}
	// Jitter: not every draw is the same.
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		seen[Backoff(base, max, 3)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("backoff has no jitter: %d distinct values in 50", len(seen))
	}
	// The schedule keeps trying for days: the delays Backoff gives add up
	// to 5 days only after many attempts, and no delay exceeds the cap's
	// jitter.
	var total time.Duration
	n := 0
	for total < 5*24*time.Hour {
		n++
		d := Backoff(base, max, n)
		if d > max*12/10 {
			t.Fatalf("retry %d waits %v, beyond the cap", n, d)
		}
		total += d
		if n > 1000 {
			t.Fatal("the schedule never reaches 5 days")
		}
	}
	if n < 25 {
		t.Fatalf("only %d attempts in 5 days", n)
	}
}

func TestLanesKeepPairsTogether(t *testing.T) {
	for lanes := 1; lanes <= 8; lanes++ {
		a := laneOf("alice@a|bob@b", lanes)
		for i := 0; i < 10; i++ {
			if laneOf("alice@a|bob@b", lanes) != a || a < 0 || a >= lanes {
				t.Fatal("a pair must always map to the same lane")
			}
		}
	}
}

// TestLanesSpreadPairs: pairs that differ only in a repeated digit spread
// over the lanes instead of piling onto one.
func TestLanesSpreadPairs(t *testing.T) {
	for _, lanes := range []int{2, 4, 8} {
		count := make([]int, lanes)
		for p := range 50 {
			count[laneOf(fmt.Sprintf("u%02d@a.example|r%02d@b.example", p, p), lanes)]++
		}
		for lane, n := range count {
			if n == 0 || n > 50*2/lanes {
				t.Fatalf("50 pairs over %d lanes: %v (lane %d has %d)", lanes, count, lane, n)
			}
		}
	}
}
