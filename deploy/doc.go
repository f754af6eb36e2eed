// Package deploy is where fednode's deployment is checked: the container
// image (Dockerfile, .dockerignore) and the compose stack
// (docker-compose.federation.yml) stand at the repository's root, where
// docker build and docker compose expect them; the stack's Vault setup
// (vault/init.sh and each node's policy, vault/NODE.hcl) is here. This
// package's tests validate them without a Docker engine: every node's
// environment is a configuration the daemon accepts, every service is
// hardened and limited, Redis and Vault are unpublished, secrets come from
// files, the policies are the ones the nodes need, and the stack's nodes
// start for real on a real Redis and Vault set up by the same script. The
// image itself is tested by `make container-test` (scripts/container-test)
// where a Docker engine runs. The monitoring that ships with the node
// lives here too: the Prometheus alert rules and their unit tests
// (prometheus/) and the Grafana dashboard (grafana/); the tests check them
// with promtool, lint a real node's scrape, and check that every metric
// they use is one the node exports. It has no code of its own.
package deploy
