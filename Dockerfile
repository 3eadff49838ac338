# syntax=docker/dockerfile:1
# Static binaries on distroless, running as a numeric non-root user.
#   docker build --target manager -t ghcr.io/temporal-batch/manager .
#   docker build --target example-worker -t ghcr.io/temporal-batch/example-worker .
#   docker build --target typescript-worker -t ghcr.io/temporal-batch/typescript-worker .
ARG GO_VERSION=1.26
ARG NODE_VERSION=20

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

# The TypeScript worker (workers/typescript): the synthetic processor and
# RecordFailures on Node.js. The Temporal SDK's native core is built for
# glibc, which distroless's Debian has.
FROM node:${NODE_VERSION}-bookworm-slim AS typescript-build
WORKDIR /src
COPY workers/typescript/package.json workers/typescript/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY workers/typescript/ ./
RUN npm run build && npm prune --omit=dev && rm -rf dist/test

FROM gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot AS typescript-worker
WORKDIR /app
COPY --from=typescript-build /src/package.json ./
COPY --from=typescript-build /src/node_modules ./node_modules
COPY --from=typescript-build /src/dist ./dist
USER 65532:65532
# The image's entrypoint is node.
CMD ["/app/dist/main.js"]

