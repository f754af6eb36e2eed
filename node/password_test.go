package node

import (
	"encoding/hex"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// TestArgon2idKnownAnswer pins the primitive to RFC 9106's argon2id test
// vector shape via x/crypto, and our PHC encoding to a fixed salt.
func TestArgon2idKnownAnswer(t *testing.T) {
	// Computed independently: argon2id("password", "somesalt", t=2, m=65536, p=1, 32)
	// is the reference implementation's documented example
	// (phc-winner-argon2 README: $argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$...).
	const want = "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"
	got := hex.EncodeToString(argon2.IDKey([]byte("password"), []byte("somesalt"), 2, 65536, 1, 32))
	if got != want {
		t.Fatalf("argon2id KAT = %s, want %s", got, want)
	}
	ok, err := checkPassword("password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	if err != nil || !ok {
		t.Fatalf("checkPassword against the reference PHC string: %v, %v", ok, err)
	}
}

func TestHashAndCheckPassword(t *testing.T) {
	p := PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	h, err := hashPassword("correct horse", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id with our params", h)
	}
	h2, _ := hashPassword("correct horse", p)
	if h == h2 {
		t.Fatal("two hashes of one password must differ (fresh salt)")
	}
	if ok, err := checkPassword("correct horse", h); !ok || err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if ok, _ := checkPassword("correct horsf", h); ok {
		t.Fatal("wrong password accepted")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcA", "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcA", "$argon2id$v=19$m=64,t=1,p=1$!!$YWJj", strings.Replace(h, "$argon2id", "$x", 1)} {
		if _, err := checkPassword("x", bad); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func TestDefaultParamsMeetOWASPMinimum(t *testing.T) {
	p := DefaultPasswordParams
	if p.MemoryKiB < 19456 || p.Time < 2 || p.Threads < 1 {
		t.Fatalf("default argon2id params %+v are below OWASP's m=19456 t=2 p=1", p)
	}
}
