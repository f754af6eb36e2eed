package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// The client's costs of end-to-end encryption (the node does none of it):
//
//	go test ./e2e -run '^$' -bench . -benchtime 20x
func BenchmarkSeal(b *testing.B) {
	a, bb := testUser(b, 0, aliceSigHex), testUser(b, 3, bobSigHex)
	to := []*PublicKeys{bb.Public()}
	text := strings.Repeat("an ordinary message ", 10)
	for b.Loop() {
		if _, err := Seal(fednode.NewID(time.Now()), alice, bob, text, nil, to, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	a, bb := testUser(b, 0, aliceSigHex), testUser(b, 3, bobSigHex)
	id := fednode.NewID(time.Now())
	e, err := Seal(id, alice, bob, strings.Repeat("an ordinary message ", 10), nil, []*PublicKeys{bb.Public()}, a)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := Open(id, alice, bob, e, bb, a.Public()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateKeys(b *testing.B) {
	for b.Loop() {
		if _, err := GenerateKeys(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnwrapBackup is one passphrase try at the production cost
// (600,000 PBKDF2-SHA256 iterations): what a second device pays once, and
// what an attacker holding the node's copy pays per guess.
func BenchmarkUnwrapBackup(b *testing.B) {
	a := testUser(b, 0, aliceSigHex)
	bk, err := WrapBackup("correct horse battery staple", alice, a)
	if err != nil {
		b.Fatal(err)
	}
	p := a.Public()
	for b.Loop() {
		if _, err := UnwrapBackup("correct horse battery staple", alice, p.EncKeyID(), p.SigKeyID(), bk); err != nil {
			b.Fatal(err)
		}
	}
}
