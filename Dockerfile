# Shiparr container image.
#
#   docker build -t shiparr .
#
# Both bases are swappable and must be Debian bookworm with Node 20 (node and npm on PATH, like node:20-bookworm-slim):
#   BASE_IMAGE        runtime stage
#   BUILD_BASE_IMAGE  build stage (default: BASE_IMAGE); needs npm and, when better-sqlite3 has no prebuilt binary
#                     for the platform, Node's headers under <node prefix>/include/node.
# Without a registry, scripts/image/build-base.sh makes both from debootstrap + the machine's Node:
#   docker build --network host --build-arg BASE_IMAGE=shiparr-base:bookworm-node20 \
#     --build-arg BUILD_BASE_IMAGE=shiparr-base:bookworm-node20-build -t shiparr .
# Behind a proxy, pass --build-arg HTTP_PROXY=… --build-arg HTTPS_PROXY=… (apt and npm read them);
# NPM_REGISTRY=<url> points npm at a mirror; EXTRA_CA_CERTS="$(cat ca.pem)" makes npm trust a TLS-intercepting
# proxy's CA during the build only (the certificates are not in the final image).
# Works with the classic builder and BuildKit (no BuildKit-only syntax, no `# syntax=` line that would need a pull).

ARG BASE_IMAGE=node:20-bookworm-slim
ARG BUILD_BASE_IMAGE=${BASE_IMAGE}

# ---------------------------------------------------------------------------------------------------------------
FROM ${BUILD_BASE_IMAGE} AS build
# better-sqlite3 is a native addon: prebuild-install tries a download first and falls back to node-gyp, which
# needs python3, make and a C++ compiler.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Declared after the toolchain layer so that changing them does not invalidate it.
ARG NPM_REGISTRY=
ARG EXTRA_CA_CERTS=
# Node reads NODE_EXTRA_CA_CERTS at start-up; an empty file adds nothing, so the variable can always be set.
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/shiparr-build-ca.pem
RUN printf '%s\n' "$EXTRA_CA_CERTS" > "$NODE_EXTRA_CA_CERTS"
WORKDIR /src
COPY package.json package-lock.json ./
# node-gyp takes the headers from the base image's own Node install rather than downloading them from nodejs.org.
# NPM_INSTALL=install is an escape hatch for registries that lack some optional platform packages: npm >= 11.16
# then rejects a valid lockfile in `npm ci` (npm/cli#9846); `npm install --no-save` still installs the locked versions.
ARG NPM_INSTALL=ci
RUN nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" \
 && if [ -f "$nodedir/include/node/node.h" ]; then export npm_config_nodedir="$nodedir"; fi \
 && if [ "$NPM_INSTALL" = install ]; then set -- install --no-save; else set -- ci; fi \
 && npm "$@" --no-audit --no-fund --no-update-notifier ${NPM_REGISTRY:+--registry "$NPM_REGISTRY"} \
 && node -e "require('better-sqlite3')(':memory:').close()"
COPY tsconfig.json tsconfig.build.json tsconfig.web.json ./
COPY src ./src
# The web UI: esbuild bundles web/ into dist/ui/ (npm run build runs scripts/build-ui.ts after tsc).
COPY web ./web
COPY scripts/build-ui.ts ./scripts/build-ui.ts
# Production dependencies only; then drop better-sqlite3's sources and object files (~27 MB): only the
# compiled addon (build/Release/better_sqlite3.node) is loaded at run time.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund --no-update-notifier ${NPM_REGISTRY:+--registry "$NPM_REGISTRY"} \
 && cd node_modules/better-sqlite3 \
 && rm -rf deps src build/deps build/Release/obj build/Release/obj.target build/Release/.deps \
           build/Release/sqlite3.a build/Release/test_extension.node \
 && cd /src && node -e "require('better-sqlite3')(':memory:').close()" \
 && rm -rf /root/.npm /tmp/*
# What Node never loads at run time (~55 % of the production node_modules): type declarations, TypeScript sources,
# source maps, docs, browser bundles (UMD), C/C++ sources, headers and objects of native builds, build files, test
# and example folders; and the compiler's own source maps in dist/. Then every dependency must still load.
RUN cd /src/node_modules \
 && find . -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' -o -name '*.ts' \
      -o -name '*.cts' -o -name '*.mts' -o -name '*.tsx' -o -name '*.md' -o -name '*.markdown' -o -name '*.umd.js' \
      -o -name '*.umd.min.js' -o -name '*.h' -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.o' \
      -o -name '*.a' -o -name '*.gyp' -o -name '*.gypi' -o -name 'Makefile' -o -name '*.mk' -o -name '.eslintrc*' \
      -o -name '.npmignore' -o -name '.editorconfig' -o -name 'tsconfig*.json' -o -name '*.tsbuildinfo' \
      -o -name '*.flow' -o -name 'CHANGELOG*' -o -name 'HISTORY*' -o -name 'AUTHORS*' -o -name 'CONTRIBUTING*' \
      -o -name '.travis.yml' \) -delete \
 && find . -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples \
      -o -name .github -o -name benchmark -o -name benchmarks -o -name obj.target -o -name .deps \) \
      -exec rm -rf {} + \
 && rm -rf @types \
 && find /src/dist -name '*.map' -delete \
 && cd /src && node -e "require('better-sqlite3')(':memory:').close()" \
 && node --input-type=module -e "import { readFileSync } from 'node:fs'; \
      for (const d of Object.keys(JSON.parse(readFileSync('package.json', 'utf8')).dependencies)) await import(d)"
# Node without its static symbol table (~10 MB; the dynamic symbols native addons link against stay): the runtime
# stage swaps it in for the base's binary.
RUN mkdir -p /out \
 && cp "$(readlink -f "$(command -v node)")" /out/node \
 && strip --strip-all /out/node \
 && /out/node -e "require('/src/node_modules/better-sqlite3')(':memory:').close()"

# ---------------------------------------------------------------------------------------------------------------
# The runtime root filesystem, assembled on the base and slimmed (scripts/image/slim-runtime.sh); the final stage
# copies it as one layer, so nothing removed here ships.
FROM ${BASE_IMAGE} AS runtime-root

# Compose v2 exists in Debian only from trixie (bookworm ships v1), and trixie's docker-cli (26.x) speaks the
# Engine API versions current engines still accept. Both packages need only libc6 >= 2.34, so they come from
# trixie through a second apt source on the base image's own Debian mirror, pinned so that nothing else is ever
# taken from trixie. Packages are signature-checked with the Debian archive keyring. tini is bookworm's.
RUN set -eu; \
    mirror="$(sed -nE 's#^URIs:[[:space:]]*([^[:space:]]*/debian)/?[[:space:]]*$#\1#p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"; \
    [ -n "$mirror" ] || mirror="$(sed -nE 's#^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]*/debian)/?[[:space:]].*#\2#p' /etc/apt/sources.list 2>/dev/null | head -n1)"; \
    [ -n "$mirror" ] || { echo "no Debian mirror in the base image's apt sources" >&2; exit 1; }; \
    printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" > /etc/apt/sources.list.d/trixie-docker.sources; \
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 1\n\nPackage: docker-cli docker-compose\nPin: release n=trixie\nPin-Priority: 500\n' \
      > /etc/apt/preferences.d/trixie-docker; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini docker-cli docker-compose openssh-client; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    docker --version; docker compose version

# Non-root user shiparr (uid/gid 1000) with HOME=/app. node:20 images already have `node` as 1000: rename it.
# The code stays root-owned (read-only for the daemon); HOME, /data and /config are the user's.
RUN set -eu; \
    if getent passwd 1000 >/dev/null; then \
      old="$(getent passwd 1000 | cut -d: -f1)"; oldgroup="$(getent group 1000 | cut -d: -f1)"; \
      usermod -l shiparr -d /app -s /usr/sbin/nologin "$old"; \
      [ -z "$oldgroup" ] || [ "$oldgroup" = shiparr ] || groupmod -n shiparr "$oldgroup"; \
      [ -n "$oldgroup" ] || groupadd -g 1000 shiparr; \
    else \
      groupadd -g 1000 shiparr; \
      useradd -u 1000 -g 1000 -d /app -M -s /usr/sbin/nologin shiparr; \
    fi; \
    rm -rf /home/node; \
    mkdir -p /app /data /config /secrets; \
    chown shiparr:shiparr /app /data /config

COPY --from=build /out/node /tmp/node-stripped
COPY scripts/image/slim-runtime.sh /tmp/slim-runtime.sh
RUN sh /tmp/slim-runtime.sh /tmp/node-stripped && rm -f /tmp/slim-runtime.sh

# ---------------------------------------------------------------------------------------------------------------
FROM scratch
COPY --from=runtime-root / /
# COPY --from keeps owners with BuildKit; the classic builder may not: HOME, /data and /config are the user's.
RUN chown shiparr:shiparr /app /data /config
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json LICENSE ./
COPY config ./config

# A container is reached through its published port, so Shiparr listens on every interface here (a checkout's
# default is 127.0.0.1). That requires authentication: set SHIPARR_AUTH_MODE=basic + SHIPARR_AUTH_PASSWORD, or
# forward + SHIPARR_TRUSTED_PROXIES, or accept an open API with SHIPARR_ALLOW_UNAUTHENTICATED=true; otherwise the
# daemon refuses to start (exit 2). See "Security" in README.md.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    NODE_ENV=production \
    HOME=/app \
    SHIPARR_HOST=0.0.0.0 \
    SHIPARR_PORT=8080 \
    SHIPARR_CONFIG_PATH=/config \
    SHIPARR_DATA_PATH=/data \
    SOPS_AGE_KEY_FILE=/secrets/age.key

ARG VERSION=
ARG REVISION=
ARG CREATED=
LABEL org.opencontainers.image.title="Shiparr" \
      org.opencontainers.image.description="Self-hosted GitOps deployer for Docker Compose: watches git repositories, decrypts SOPS/age secrets, deploys, health-checks, rolls back and notifies." \
      org.opencontainers.image.licenses="AGPL-3.0-only" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

USER shiparr:shiparr
EXPOSE 8080
# /api/health answers 200 while the process serves requests (readiness details are in the body). No curl: Node's fetch.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SHIPARR_PORT||process.env.Shiparr_PORT||8080)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# tini as PID 1 forwards signals to node and reaps the docker/compose child processes.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/main.js"]
CMD ["serve"]
