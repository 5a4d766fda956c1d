# syntax=docker/dockerfile:1
# The cbc-jwt service as a container: `cbc-jwt serve` from the packed package, on a distroless
# Node.js 24 base (no shell, no package manager), as a non-root user.
#
#   docker build -t cbc-jwt:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD/keyset.public.json:/keys/jwt-keyset:ro" \
#     -e CBC_JWT_KEYSET_FILE=/keys/jwt-keyset cbc-jwt:0.1.0
#
# With no keyset configured the image exits 1 with one line naming CBC_JWT_KEYSET_FILE: it
# never generates a development keyset (NODE_ENV=production refuses one). A verifier is given
# the verification keyset (keyset.public.json, no private key), never the private one.
#
# Stage 1 builds and packs exactly what npm would publish; stage 2 installs the production
# dependencies from the lockfile (npm ci --omit=dev: the versions that were tested) beside the
# packed files; stage 3 copies the result onto the runtime image. Neither the sources, the
# tests nor the dev dependencies reach the final image. Base images are pinned by tag; pin
# them by digest (@sha256:…) in your registry mirror for reproducible builds.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY schema ./schema
COPY deploy ./deploy
COPY docs ./docs
RUN npm run build && npm pack --ignore-scripts --pack-destination /tmp && mkdir /tmp/pkg \
 && tar -xzf /tmp/cbc-jwt-*.tgz -C /tmp/pkg --strip-components=1

FROM node:24-bookworm-slim AS install
WORKDIR /app/node_modules/cbc-jwt
COPY --from=build /tmp/pkg ./
COPY package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && rm package-lock.json && npm cache clean --force

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=install /app/node_modules/cbc-jwt ./node_modules/cbc-jwt
ENV NODE_ENV=production \
    PORT=8000 \
    HOST=0.0.0.0
# The Kubernetes manifests run it as 10001 (runAsUser); the image's own default is distroless'
# nonroot user (65532). Either way: no root, and nothing in the image is writable by it.
USER 65532:65532
EXPOSE 8000
# The base image's entrypoint is node; SIGTERM reaches it directly (no shell in between) and
# the service closes cleanly. There is no HEALTHCHECK: the orchestrator probes /healthz and /readyz.
CMD ["/app/node_modules/cbc-jwt/dist/ops/cli/main.js", "serve"]
