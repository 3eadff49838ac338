# syntax=docker/dockerfile:1
# Static binaries on distroless, running as a numeric non-root user.
#   docker build --target manager -t ghcr.io/temporal-batch/manager .
#   docker build --target example-worker -t ghcr.io/temporal-batch/example-worker .
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
COPY pkg/ pkg/
ARG TARGETOS=linux TARGETARCH=amd64
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/manager ./cmd/example-worker

FROM gcr.io/distroless/static-debian12:nonroot AS manager
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]

FROM gcr.io/distroless/static-debian12:nonroot AS example-worker
COPY --from=build /out/example-worker /usr/local/bin/example-worker
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/example-worker"]
