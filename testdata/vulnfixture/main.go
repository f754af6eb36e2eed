// Command vulnfixture decrypts a JWE from its argument with go-jose v4.1.1,
// which GO-2026-4945 affects. It exists to be reported, never to run.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"

	jose "github.com/go-jose/go-jose/v4"
)

func main() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	obj, err := jose.ParseEncrypted(os.Args[1], []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		fmt.Println(err)
		return
	}
	pt, err := obj.Decrypt(key)
	fmt.Println(string(pt), err)
}
