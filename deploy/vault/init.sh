#!/bin/sh
# DEVELOPMENT ONLY. The compose stack's one-shot "vault-init" service: it
# prepares the dev-mode Vault (in memory, forgotten when it stops) for the
# three nodes, with the root token, which no node ever sees:
#   - enables Transit (a dev server already has KV version 2 at secret/);
#   - writes each node's least-privilege policy, deploy/vault/NODE.hcl, made
#     by `fednode admin vault-policy` from that node's own environment (the
#     compose test holds them equal);
#   - creates each node's token with that policy alone (no default policy),
#     periodic (the node renews it), with the id from the node's secret file.
# A production Vault is set up once by hand as docs/OPERATIONS.md "Keys and
# secrets in Vault" says, with AppRole rather than fixed token ids.
set -eu
secrets=${SECRETS_DIR:-/run/secrets}   # both overridable for the test that runs
policies=${POLICY_DIR:-/fednode/vault} # this script against a real Vault
VAULT_TOKEN=$(cat "$secrets/vault-root-token")
export VAULT_TOKEN
if ! vault secrets list | grep -q '^transit/'; then
	vault secrets enable transit
fi
for node in node-a node-b node-c; do
	vault policy write "$node" "$policies/$node.hcl"
	token=$(cat "$secrets/$node-vault-token")
	if VAULT_TOKEN="$token" vault token lookup >/dev/null 2>&1; then
		echo "vault-init: $node: token exists"
		continue
	fi
	vault token create -id="$token" -policy="$node" -no-default-policy -orphan -period=24h >/dev/null
	echo "vault-init: $node: token created with policy $node"
done
