#!/usr/bin/env bash
# Builds the Shiparr image from the repository's Dockerfile with what this machine needs to reach the npm
# registry and the Debian mirror from inside the build:
#   - host networking (the build sees the host's DNS, /etc/hosts and routes),
#   - HTTP(S)_PROXY / NO_PROXY from the environment, forwarded as build args when set,
#   - npm's configured registry (`npm config get registry`) when npm is installed,
#   - CA certificates this machine's Node trusts beyond its built-in roots (NODE_EXTRA_CA_CERTS), so npm works
#     behind a TLS-intercepting proxy; used in the build stage only.
# Bases: SHIPARR_BASE_IMAGE / SHIPARR_BUILD_BASE_IMAGE; by default the local shiparr-base tags made by
# build-base.sh when they exist, else the Dockerfile's default (node:20-bookworm-slim).
#
# Usage: scripts/image/build.sh [-t TAG] [more docker build arguments…]     (default tag: shiparr:local)
set -euo pipefail
cd "$(dirname "$0")/../.."

tag="shiparr:local"
extra=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    -t|--tag) tag="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

local_base="${SHIPARR_BASE_TAG:-shiparr-base:bookworm-node20}"
base="${SHIPARR_BASE_IMAGE:-}"
build_base="${SHIPARR_BUILD_BASE_IMAGE:-}"
if [ -z "$base" ] && docker image inspect "$local_base" >/dev/null 2>&1; then base="$local_base"; fi
if [ -z "$build_base" ] && [ "$base" = "$local_base" ] && docker image inspect "$local_base-build" >/dev/null 2>&1; then
  build_base="$local_base-build"
fi

args=(--network host --force-rm)
[ -n "$base" ] && args+=(--build-arg "BASE_IMAGE=$base")
[ -n "$build_base" ] && args+=(--build-arg "BUILD_BASE_IMAGE=$build_base")
for v in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  if [ -n "${!v:-}" ]; then args+=(--build-arg "$v"); fi
done
if command -v npm >/dev/null 2>&1; then
  registry="$(npm config get registry 2>/dev/null || true)"
  if [ -n "$registry" ] && [ "$registry" != "https://registry.npmjs.org/" ]; then args+=(--build-arg "NPM_REGISTRY=$registry"); fi
fi
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$NODE_EXTRA_CA_CERTS" ] && command -v node >/dev/null 2>&1; then
  # Only certificates Node does not already ship: keeps the build arg small (a whole system bundle is >128 KiB,
  # the kernel's limit for one argument).
  # shellcheck disable=SC2016
  EXTRA_CA_CERTS="$(node -e '
    const roots = new Set(require("node:tls").rootCertificates.map((c) => c.replace(/\s+/g, "")));
    const pem = require("node:fs").readFileSync(process.argv[1], "utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    process.stdout.write(pem.filter((c) => !roots.has(c.replace(/\s+/g, ""))).join("\n"));
  ' "$NODE_EXTRA_CA_CERTS")"
  if [ -n "$EXTRA_CA_CERTS" ]; then export EXTRA_CA_CERTS; args+=(--build-arg EXTRA_CA_CERTS); fi
fi
# npm >= 11.16 rejects a valid lockfile in `npm ci` when the registry lacks optional platform packages
# (npm/cli#9846). Check on a scratch copy and, only then, let the build use `npm install --no-save`.
if command -v npm >/dev/null 2>&1; then
  scratch="$(mktemp -d)"
  cp package.json package-lock.json "$scratch/"
  if ! (cd "$scratch" && npm ci --dry-run --ignore-scripts --no-audit --no-fund >"$scratch/out" 2>&1) \
     && grep -q 'EUSAGE' "$scratch/out"; then
    printf '[build] warning: npm ci rejects package-lock.json with this registry (npm/cli#9846); building with npm install --no-save\n' >&2
    args+=(--build-arg NPM_INSTALL=install)
  fi
  rm -rf "$scratch"
fi
version="$(node -p 'require("./package.json").version' 2>/dev/null || true)"
revision="$(git rev-parse HEAD 2>/dev/null || true)"
args+=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)")

printf '[build] docker build -t %s (base: %s, build base: %s)\n' "$tag" "${base:-Dockerfile default}" "${build_base:-same}" >&2
exec docker build "${args[@]}" "${extra[@]}" -t "$tag" .
