package keys

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// RFC 5649 section 6.
func TestKWPKnownAnswers(t *testing.T) {
	kek, _ := hex.DecodeString("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, v := range []struct{ key, wrapped string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		key, _ := hex.DecodeString(v.key)
		got, err := wrapKWP(kek, key)
		if err != nil || hex.EncodeToString(got) != v.wrapped {
			t.Fatalf("wrap %s = %x, %v; want %s", v.key, got, err, v.wrapped)
		}
		back, err := unwrapKWP(kek, got)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("unwrap: %x %v", back, err)
		}
		got[3] ^= 1
		if _, err := unwrapKWP(kek, got); err == nil {
			t.Fatal("a tampered wrap unwrapped")
		}
	}
}
