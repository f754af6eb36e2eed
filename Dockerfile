# fednode: a static binary on a distroless base, run as an unprivileged user
# (distroless's nonroot, uid 65532) that owns the data directory.
# The build image's Go is the toolchain go.mod pins (a test holds them equal):
# its standard library is what the vulnerability scan checked.
FROM golang:1.26.11 AS build
# The version `fednode --version` prints (make container-test passes git
# describe); .dockerignore keeps .git out, so there is no VCS stamp.
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/fednode/fednode/internal/buildinfo.version=${VERSION}" -o /out/ ./cmd/fednode ./cmd/fedctl
# The data directory, made here because the final image has no shell, and
# copied with its owner below: a fresh named volume mounted on /data takes
# the ownership and mode of the image's /data, so the node can write there.
RUN mkdir -p /out/root/data && chmod 0700 /out/root/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fednode /out/fedctl /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/root/ /
USER nonroot:nonroot
ENV DATA_DIR=/data LISTEN_ADDR=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
# Liveness: `fednode healthcheck` asks the node's own /healthz (there is no
# curl here). A first start generates two RSA-4096 keys: give it a minute.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["/usr/local/bin/fednode", "healthcheck"]
# SIGTERM: the node stops accepting, closes sockets, commits, and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/fednode"]
