# fednode: the node's policy, made by `fednode admin vault-policy` from its
# configuration; write it again when VAULT_*_MOUNT, VAULT_KEY_PREFIX,
# KEYS_BACKEND or a *_VAULT_PATH changes.

# Its own token: lookup-self (start, readiness) and renew-self.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# The signing key: read its public halves; create it when absent, only
# as non-exportable rsa-4096; rotate it; retire old versions; sign.
path "transit/keys/node-b-sig" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "type"       = ["rsa-4096"]
    "exportable" = [false]
  }
}
path "transit/keys/node-b-sig/rotate" {
  capabilities = ["update"]
  denied_parameters = {
    "*" = []
  }
}
path "transit/keys/node-b-sig/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "min_decryption_version" = []
  }
}
path "transit/sign/node-b-sig/sha2-256" {
  capabilities = ["update"]
  allowed_parameters = {
    "input"               = []
    "signature_algorithm" = ["pkcs1v15"]
  }
}

# The encryption key: the same, and decrypt instead of sign.
path "transit/keys/node-b-enc" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "type"       = ["rsa-4096"]
    "exportable" = [false]
  }
}
path "transit/keys/node-b-enc/rotate" {
  capabilities = ["update"]
  denied_parameters = {
    "*" = []
  }
}
path "transit/keys/node-b-enc/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "min_decryption_version" = []
  }
}
path "transit/decrypt/node-b-enc" {
  capabilities = ["update"]
  allowed_parameters = {
    "ciphertext" = []
  }
}

# The key that wraps the data keys of messages at rest: read it; create
# it when absent, only as non-exportable aes256-gcm96; encrypt and decrypt.
path "transit/keys/node-b-atrest" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "type"       = ["aes256-gcm96"]
    "exportable" = [false]
  }
}
path "transit/encrypt/node-b-atrest" {
  capabilities = ["update"]
  allowed_parameters = {
    "plaintext" = []
  }
}
path "transit/decrypt/node-b-atrest" {
  capabilities = ["update"]
  allowed_parameters = {
    "ciphertext" = []
  }
}

# When each retired key version stops being published.
path "secret/data/node-b/key-retirements" {
  capabilities = ["create", "read", "update"]
}

# The JWT secret: created on first start, a new version per rotation;
# the metadata lists the versions still honoured.
path "secret/data/node-b/jwt" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/node-b/jwt" {
  capabilities = ["read"]
}
