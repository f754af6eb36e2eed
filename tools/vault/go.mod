// A separate module that builds a Vault server for the test suite, so that
// none of Vault's dependencies enter fednode's go.mod. scripts/vault-build
// builds it into .tools/bin/vault (ignored by git); .ci/run does so only when
// it is missing.
module github.com/fednode/fednode/tools/vault

go 1.26

require github.com/hashicorp/vault v1.21.0

// v1.21.0's in-tree sdk matches the published v0.20.0; the other two
// replacements stand in for modules the proxy does not serve as required.
replace github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk v0.20.0

replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
