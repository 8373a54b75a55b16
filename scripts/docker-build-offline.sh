#!/usr/bin/env bash
# Builds the Kavka image kavka:latest with no network access during `docker build`: Kavka is
# compiled and its production node_modules installed on this host (npm ci reaches the npm
# registry or its cache from here), into a staging directory; then Dockerfile.offline copies
# the result into the base image with `docker build --network none`.
#
#   scripts/docker-build-offline.sh              # tag kavka:latest (docker-compose.yml uses it)
#   KAVKA_IMAGE=kavka:dev scripts/docker-build-offline.sh
#
# The base image node:20-bookworm-slim must exist locally: pulled, or made by
# `sudo scripts/offline-base-image.sh`. Staging goes to $TMPDIR/kavka-docker-build (or KAVKA_STAGE_DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${KAVKA_IMAGE:-kavka:latest}"
BASE_IMAGE="node:20-bookworm-slim"
STAGE="${KAVKA_STAGE_DIR:-${TMPDIR:-/tmp}/kavka-docker-build}"

say() { echo "docker-build-offline: $*" >&2; }
die() { say "$*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker is not installed (apt-get install docker.io)"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH"
docker info >/dev/null 2>&1 || die "cannot reach the docker daemon; start dockerd first"
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
  || die "base image $BASE_IMAGE is missing: pull it, or build it with: sudo scripts/offline-base-image.sh"

case "$STAGE" in
  /|"$ROOT"|"$HOME") die "refusing to use $STAGE as the staging directory" ;;
esac
rm -rf "$STAGE"
mkdir -p "$STAGE/build" "$STAGE/context/app"

say "compiling in $STAGE/build"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/tsconfig.json" "$ROOT/tsconfig.build.json" "$STAGE/build/"
cp -R "$ROOT/src" "$ROOT/proto" "$STAGE/build/"
# --ignore-scripts: `prepare` (a build) runs below instead; native modules ship prebuilt binaries.
(cd "$STAGE/build" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run build --silent)
rm -f "$STAGE/build/dist/.tsbuildinfo"

say "installing production dependencies in $STAGE/context/app"
APP="$STAGE/context/app"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$APP/"
(cd "$APP" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
cp -R "$STAGE/build/dist" "$STAGE/build/proto" "$ROOT/bin" "$APP/"
mkdir -p "$APP/docker"
cp "$ROOT/docker/healthcheck.js" "$APP/docker/"
cp "$ROOT/Dockerfile.offline" "$STAGE/context/Dockerfile"
# The smoke test below loads the CLI from the staged tree with the host's node.
node "$APP/dist/cli/main.js" broker --help >/dev/null || die "the staged dist does not run"

say "docker build --network none -t $IMAGE"
docker build --network none -t "$IMAGE" "$STAGE/context"
docker run --rm --network none "$IMAGE" broker --help >/dev/null || die "$IMAGE does not run kavka broker --help"
say "built $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }') (base $BASE_IMAGE: $(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
