// A module that must fail the vulnerability scan: it requires go-jose v4.1.1
// (GO-2026-4945, panics in JWE decryption, fixed in v4.1.4) and calls the
// vulnerable code. scripts/vulncheck scans it first and refuses to trust a
// scan that does not report it.
module example.com/vulnfixture

go 1.26.0

require github.com/go-jose/go-jose/v4 v4.1.1
