#!/usr/bin/env bash
# Builds the base image `node:20-bookworm-slim` locally, for machines without an image registry:
# a minimal Debian bookworm (debootstrap --variant=minbase, from the Debian mirror apt is set up
# with) plus this host's Node.js runtime (node, and npm/npx when the host has them), imported
# with `docker import`. The Dockerfiles then build FROM it as they would from the official image.
#
#   sudo scripts/offline-base-image.sh            # skips the work when the image already exists
#   sudo scripts/offline-base-image.sh --force    # rebuilds it
#
# Environment: KAVKA_BASE_IMAGE (default node:20-bookworm-slim), KAVKA_DEBIAN_MIRROR (default:
# read from /etc/apt/sources.list and /etc/apt/sources.list.d/), KAVKA_ROOTFS_DIR (default: a
# temporary directory, removed at the end).
set -euo pipefail

IMAGE="${KAVKA_BASE_IMAGE:-node:20-bookworm-slim}"
SUITE=bookworm
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "offline-base-image: unknown argument $arg (use --force or --help)" >&2; exit 2 ;;
  esac
done

say() { echo "offline-base-image: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and the rootfs ownership); run it with sudo"
command -v docker >/dev/null 2>&1 || die "docker is not installed (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "cannot reach the docker daemon; start dockerd first"

if [ "$FORCE" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE already exists ($(docker image inspect -f '{{.Id}}' "$IMAGE")); --force rebuilds it"
  exit 0
fi

NODE_BIN="$(command -v node || true)"
[ -n "$NODE_BIN" ] || die "no node on PATH: the image takes this host's Node.js runtime"
NODE_BIN="$(readlink -f "$NODE_BIN")"
NODE_VERSION="$("$NODE_BIN" --version)"
case "$NODE_VERSION" in
  v20.*) ;;
  *) say "warning: host node is $NODE_VERSION, not 20.x; the image is still tagged $IMAGE" ;;
esac

if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  apt-get install -y debootstrap >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null; }
fi

# The Debian mirror apt already uses: deb822 sources (URIs:) or one-line sources (deb URL suite).
find_mirror() {
  local files=() f
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  {
    awk '/^[[:space:]]*URIs:/ { for (i = 2; i <= NF; i++) print $i }' "${files[@]}"
    awk '/^[[:space:]]*deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) { print $i; break } }' "${files[@]}"
  } | grep -E '/debian/?$' | grep -v -- '-security' | head -n 1
}
MIRROR="${KAVKA_DEBIAN_MIRROR:-$(find_mirror)}"
[ -n "$MIRROR" ] || die "found no Debian mirror in /etc/apt/sources.list{,.d}; set KAVKA_DEBIAN_MIRROR"

if [ -n "${KAVKA_ROOTFS_DIR:-}" ]; then
  ROOTFS="$KAVKA_ROOTFS_DIR"
  rm -rf "$ROOTFS"
  mkdir -p "$ROOTFS"
  CLEANUP=0
else
  ROOTFS="$(mktemp -d /tmp/kavka-rootfs.XXXXXX)"
  CLEANUP=1
fi
cleanup() { if [ "$CLEANUP" -eq 1 ]; then rm -rf "$ROOTFS"; fi; }
trap cleanup EXIT

say "debootstrap --variant=minbase $SUITE from $MIRROR into $ROOTFS (takes a few minutes)"
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" > "$ROOTFS.debootstrap.log" 2>&1 \
  || { tail -n 20 "$ROOTFS.debootstrap.log" >&2; die "debootstrap failed (full log: $ROOTFS.debootstrap.log)"; }
rm -f "$ROOTFS.debootstrap.log"

# Node.js where the official image has it: /usr/local/bin/node, npm under /usr/local/lib.
say "adding node $NODE_VERSION from $NODE_BIN"
install -D -m 0755 "$NODE_BIN" "$ROOTFS/usr/local/bin/node"
NPM_DIR=""
for candidate in "$(dirname "$NODE_BIN")/../lib/node_modules/npm" /usr/lib/node_modules/npm /usr/local/lib/node_modules/npm; do
  if [ -f "$candidate/bin/npm-cli.js" ]; then NPM_DIR="$(readlink -f "$candidate")"; break; fi
done
if [ -n "$NPM_DIR" ]; then
  say "adding npm $(node "$NPM_DIR/bin/npm-cli.js" --version 2>/dev/null || echo '?') from $NPM_DIR"
  mkdir -p "$ROOTFS/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$ROOTFS/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
else
  say "no npm found next to node: the image has node only"
fi

# Every shared library node needs must come from the rootfs itself (libstdc++ comes with apt).
if ! chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin /usr/local/bin/node -e 'process.stdout.write(`node ${process.version} runs in the rootfs\n`)' >&2; then
  chroot "$ROOTFS" ldd /usr/local/bin/node >&2 || true
  die "node does not run inside the rootfs (missing libraries above?)"
fi

# The official image has the user node (uid 1000); useradd comes with minbase's passwd package.
if chroot "$ROOTFS" sh -c 'command -v useradd' >/dev/null 2>&1; then
  chroot "$ROOTFS" sh -c 'getent passwd node >/dev/null || { groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node; }'
else
  say "no useradd in the rootfs: the Dockerfiles write their user into /etc/passwd themselves"
fi

# Slim it down: package caches and lists, docs, man pages.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
  "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
# The host's CA bundle, so that npm inside builds FROM this image trusts what the host trusts
# (minbase has no ca-certificates; node's built-in roots stay in use as well).
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CA_CHANGE=()
if [ -f "$CA_BUNDLE" ]; then
  install -D -m 0644 "$CA_BUNDLE" "$ROOTFS$CA_BUNDLE"
  CA_CHANGE=(--change "ENV NODE_EXTRA_CA_CERTS=$CA_BUNDLE")
fi
# Names resolve as docker sets them up at run time.
: > "$ROOTFS/etc/resolv.conf"
echo "kavka-base" > "$ROOTFS/etc/hostname"

say "importing $ROOTFS as $IMAGE"
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${NODE_VERSION#v}" \
  "${CA_CHANGE[@]}" \
  --change 'CMD ["node"]' \
  --message "Debian $SUITE minbase + host node $NODE_VERSION (scripts/offline-base-image.sh)" \
  - "$IMAGE" >/dev/null
docker run --rm --network none "$IMAGE" node -e 'process.stdout.write(`${process.version} ${process.platform}-${process.arch}\n`)' >/dev/null \
  || die "the imported image does not run node"
say "built $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
