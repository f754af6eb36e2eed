//go:build tools

// Package tools pins the Vault server this module builds.
package tools

import _ "github.com/hashicorp/vault"
