#!/usr/bin/env bash
# Builds Shiparr's base images locally, for machines that cannot pull `node:20-bookworm-slim` (no registry):
#
#   shiparr-base:bookworm-node20        Debian bookworm (debootstrap --variant=minbase) + this machine's Node 20
#   shiparr-base:bookworm-node20-build  the above + npm + Node headers (node-gyp builds better-sqlite3 offline)
#
# The runtime image is FROM the first, the build stage FROM the second (Dockerfile args BASE_IMAGE and
# BUILD_BASE_IMAGE), so npm and 50 MB of headers stay out of the image that runs.
# The Debian mirror is the one this machine's apt already uses (override: DEBIAN_MIRROR=URI); nothing is pulled.
# Cached: does nothing when both tags exist, unless --force is given. Needs root (debootstrap, chroot).
#
# Usage: scripts/image/build-base.sh [--force]
# Env:   SHIPARR_BASE_TAG (default shiparr-base:bookworm-node20), NODE_BIN (default: node on PATH),
#        NPM_DIR, NODE_INCLUDE (default: next to NODE_BIN's prefix), DEBIAN_MIRROR, DEBIAN_SUITE (bookworm).
set -euo pipefail
# debootstrap and chroot live in /usr/sbin on Debian, which a non-login root shell's PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf '[build-base] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

tag="${SHIPARR_BASE_TAG:-shiparr-base:bookworm-node20}"
build_tag="${tag}-build"
suite="${DEBIAN_SUITE:-bookworm}"

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1 && docker image inspect "$build_tag" >/dev/null 2>&1; then
  log "cached: $tag and $build_tag exist (use --force to rebuild)"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot)"

# --- Node from this machine ---------------------------------------------------------------------------------
node_bin="$(readlink -f "${NODE_BIN:-$(command -v node || true)}")"
[ -x "$node_bin" ] || die "node not found (set NODE_BIN)"
node_version="$("$node_bin" -p 'process.versions.node')"
[ "${node_version%%.*}" = 20 ] || die "need Node 20, $node_bin is $node_version"
prefix="$(dirname "$(dirname "$node_bin")")"
npm_dir="${NPM_DIR:-$prefix/lib/node_modules/npm}"
node_include="${NODE_INCLUDE:-$prefix/include/node}"
[ -f "$npm_dir/bin/npm-cli.js" ] || die "npm not found at $npm_dir (set NPM_DIR)"
[ -f "$node_include/node.h" ] || die "Node headers not found at $node_include (set NODE_INCLUDE)"
[ -f "$node_include/node_version.h" ] && grep -q "define NODE_MAJOR_VERSION 20" "$node_include/node_version.h" \
  || die "headers at $node_include are not Node 20's"

# --- Debian mirror this machine uses (never hard-coded) ------------------------------------------------------
mirror="${DEBIAN_MIRROR:-$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}' || true
  } | grep -E '/debian/?$' | head -n1 || true)}"
[ -n "$mirror" ] || die "no Debian mirror in this machine's apt sources (set DEBIAN_MIRROR)"

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

work="$(mktemp -d /var/tmp/shiparr-base.XXXXXX)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
root="$work/rootfs"

log "debootstrap $suite (minbase) from $mirror"
start=$(date +%s)
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2; die "debootstrap failed"; }
log "debootstrap done in $(( $(date +%s) - start )) s"

# --- Slim the rootfs like Debian's official -slim images ------------------------------------------------------
# Later `apt-get install`s in the Dockerfile skip docs, man pages and translations too (copyright files are kept).
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"$root/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
cat >"$root/etc/apt/apt.conf.d/docker-recommends" <<'EOF'
APT::Install-Recommends "false";
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/usr/share/lintian/*
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/* "$root/debootstrap"

# apt sources: the Debian suites this machine uses (main, updates, security) when it runs the same release,
# else just the mirror. Signed-By paths point at debian-archive-keyring, which minbase installs.
: >"$root/etc/apt/sources.list"
copied=0
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  if grep -qE '^URIs:.*/debian(-security)?/?$' "$f" && grep -qE "^Suites:.*\b$suite\b" "$f"; then
    cp "$f" "$root/etc/apt/sources.list.d/"; copied=1
  fi
done
if grep -hE "^deb (\[[^]]*\] )?[^ ]+/debian(-security)?/? $suite" /etc/apt/sources.list /etc/apt/sources.list.d/*.list >>"$root/etc/apt/sources.list" 2>/dev/null; then
  copied=1
fi
[ "$copied" = 1 ] || echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
[ -s "$root/etc/apt/sources.list" ] || rm -f "$root/etc/apt/sources.list"
: >"$root/etc/resolv.conf"
echo shiparr >"$root/etc/hostname"

# --- Node (runtime base): the binary only, debug info stripped -------------------------------------------------
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
if command -v strip >/dev/null 2>&1; then strip --strip-debug "$root/usr/local/bin/node"; fi
chroot_bin="$(command -v chroot)" || die "chroot not found (coreutils)"
env -i PATH=/usr/local/bin:/usr/bin:/bin "$chroot_bin" "$root" /usr/local/bin/node -e 'process.exit(0)' || die "node does not run inside the rootfs (missing libraries?)"

env_changes=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV LANG=C.UTF-8'
  --change "ENV NODE_VERSION=$node_version"
  --change 'CMD ["node"]'
)
log "docker import → $tag"
tar --numeric-owner --xattrs --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -C "$root" -cf - . \
  | docker import "${env_changes[@]}" --message "debootstrap $suite minbase + node $node_version" - "$tag" >/dev/null

# --- Build base: + npm (with npm/npx links) + headers, as a layer on top of the runtime base ------------------
ctx="$work/build-ctx"
mkdir -p "$ctx/npm" "$ctx/include"
cp -a "$npm_dir/." "$ctx/npm/"
cp -a "$node_include" "$ctx/include/node"
cat >"$ctx/Dockerfile" <<EOF
FROM $tag
COPY npm /usr/local/lib/node_modules/npm
COPY include /usr/local/include
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && npm --version
EOF
log "docker build → $build_tag"
docker build -q -t "$build_tag" "$ctx" >/dev/null
log "done in $(( $(date +%s) - start )) s: $(docker image inspect -f '{{.Size}}' "$tag") B ($tag), $(docker image inspect -f '{{.Size}}' "$build_tag") B ($build_tag)"
