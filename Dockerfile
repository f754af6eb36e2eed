# fednode: a static binary on a distroless base, run as an unprivileged user.
# The build image's Go is the toolchain go.mod pins (a test holds them equal):
# its standard library is what the vulnerability scan checked.
FROM golang:1.26.11 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/fednode ./cmd/fednode \
 && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/fedctl ./cmd/fedctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fednode /out/fedctl /usr/local/bin/
USER nonroot:nonroot
ENV DATA_DIR=/data LISTEN_ADDR=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/fednode", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/fednode"]
