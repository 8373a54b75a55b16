# Kavka node image. Two stages on Node 20 (Debian bookworm): the build stage installs every
# dependency and compiles TypeScript; the runtime stage gets dist/, proto/ and the production
# node_modules only, and runs as the unprivileged user kavka (uid 10001) with data under
# /var/lib/kavka.
#
#   docker build -t kavka:latest .        (or: docker-compose build)
#
# Without a registry, build the base image locally and the image from a host-side build:
#   sudo scripts/offline-base-image.sh && scripts/docker-build-offline.sh   (Dockerfile.offline)
# Keep the runtime stage in step with Dockerfile.offline.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here; the native modules
# (classic-level, @node-rs/crc32) ship prebuilt binaries that load without install scripts.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY proto ./proto
RUN npm run build \
 && rm -f dist/.tsbuildinfo \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim
# The user kavka (uid/gid 10001); a base without useradd gets the same entries written directly.
RUN if command -v useradd >/dev/null 2>&1; then \
      groupadd --system --gid 10001 kavka \
      && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/kavka --no-create-home --shell /usr/sbin/nologin kavka; \
    else \
      echo 'kavka:x:10001:' >> /etc/group \
      && echo 'kavka:x:10001:10001:Kavka:/var/lib/kavka:/usr/sbin/nologin' >> /etc/passwd; \
    fi \
 && mkdir -p /var/lib/kavka \
 && chown 10001:10001 /var/lib/kavka
WORKDIR /app
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
COPY bin ./bin
COPY docker/healthcheck.js ./docker/healthcheck.js
# A single node out of the box: `docker run -p 127.0.0.1:9092:9092 kavka:latest`. Every key can
# be changed with KAVKA_<KEY_IN_UPPER_SNAKE> (docker-compose.yml runs three nodes that way).
ENV NODE_ENV=production \
    KAVKA_LOG_DIRS=/var/lib/kavka \
    KAVKA_LISTENERS=CLIENT://0.0.0.0:9092,INTERNAL://0.0.0.0:9192 \
    KAVKA_ADVERTISED_LISTENERS=CLIENT://127.0.0.1:9092,INTERNAL://127.0.0.1:9192 \
    KAVKA_ADMIN_LISTENER=0.0.0.0:9644
USER 10001:10001
VOLUME ["/var/lib/kavka"]
# CLIENT, INTERNAL, admin HTTP (compose's nodes 2 and 3 use CLIENT 9093 and 9094)
EXPOSE 9092 9093 9094 9192 9644
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 CMD ["node", "/app/docker/healthcheck.js"]
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["broker"]
