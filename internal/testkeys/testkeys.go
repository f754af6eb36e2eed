// Package testkeys holds fixed RSA-4096 keys for tests and for the test
// vectors in docs/PROTOCOL.md. They are public: never use them for anything
// but tests. Generating RSA-4096 keys takes seconds each, which is why tests
// use these instead.
package testkeys

import (
	"crypto/rsa"
	"crypto/x509"
	"embed"
	"encoding/pem"
	"fmt"
)

//go:embed key*.pem
var files embed.FS

// Count is how many keys there are.
const Count = 8

// PEM returns key i as a PKCS#8 PEM block.
func PEM(i int) []byte {
	b, err := files.ReadFile(fmt.Sprintf("key%d.pem", i))
	if err != nil {
		panic(err)
	}
	return b
}

// Key returns key i.
func Key(i int) *rsa.PrivateKey {
	block, _ := pem.Decode(PEM(i))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(*rsa.PrivateKey)
}
