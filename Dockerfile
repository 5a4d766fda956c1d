# syntax=docker/dockerfile:1
# The cbc-jwt service as a container: `cbc-jwt serve` from the packed package, on a distroless
# Node.js 20 base (no shell, no package manager), as a non-root user.
#
#   docker build -t cbc-jwt:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD/keyset.json:/keys/jwt-keyset:ro" \
#     -e CBC_JWT_KEYSET_FILE=/keys/jwt-keyset cbc-jwt:0.1.0
#
# Stage 1 builds and packs exactly what npm would publish; stage 2 installs that tarball with
# production dependencies only; stage 3 copies the result onto the runtime image. Neither the
# sources, the tests nor the dev dependencies reach the final image.

FROM node:20.19-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY schema ./schema
COPY deploy ./deploy
COPY docs ./docs
RUN npm run build && npm pack --ignore-scripts --pack-destination /tmp && mv /tmp/cbc-jwt-*.tgz /tmp/cbc-jwt.tgz

FROM node:20.19-bookworm-slim AS install
WORKDIR /app
COPY --from=build /tmp/cbc-jwt.tgz /tmp/cbc-jwt.tgz
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund --no-package-lock /tmp/cbc-jwt.tgz \
 && npm cache clean --force

FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
COPY --from=install /app/node_modules ./node_modules
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
