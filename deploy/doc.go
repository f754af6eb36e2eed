// Package deploy is where fednode's deployment is checked: the container
// image (Dockerfile) and the compose stack (docker-compose.federation.yml)
// stand at the repository's root, where docker build and docker compose
// expect them, and this package's tests validate them without a Docker
// engine: every node's environment is a configuration the daemon accepts,
// the containers are hardened, and the image is built with the toolchain
// go.mod pins. The monitoring that ships with the node lives here too: the
// Prometheus alert rules and their unit tests (prometheus/) and the Grafana
// dashboard (grafana/); the tests check them with promtool, lint a real
// node's scrape, and check that every metric they use is one the node
// exports. It has no code of its own.
package deploy
