// Package deploy is where fednode's deployment is checked: the container
// image (Dockerfile) and the compose stack (docker-compose.federation.yml)
// stand at the repository's root, where docker build and docker compose
// expect them, and this package's tests validate them without a Docker
// engine: every node's environment is a configuration the daemon accepts,
// the containers are hardened, and the image is built with the toolchain
// go.mod pins. It has no code of its own.
package deploy
