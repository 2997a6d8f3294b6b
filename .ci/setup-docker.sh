#!/usr/bin/env bash
# Installs and starts what the Docker-dependent tests need on a fresh Debian bookworm machine:
# docker.io (engine), busybox-static (test images), git, the test tools below, and Compose v2 taken from the Debian
# trixie package (bookworm has only v1). Idempotent: safe to run when everything is already there.
set -euo pipefail

log() { printf '[setup-docker] %s\n' "$*" >&2; }
need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
[ -x /bin/busybox ] || command -v busybox >/dev/null 2>&1 || need_apt+=(busybox-static)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v git-http-backend >/dev/null 2>&1 || [ -x "$(git --exec-path 2>/dev/null)/git-http-backend" ] || need_apt+=(git)
# The browser tests drive Debian's chromium (nothing downloads a browser); the multi-host tests need sshd, openssl
# (test certificates) and iproute2/util-linux (network namespaces, nsenter); the registry tests Debian's
# docker-registry and htpasswd.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium fonts-dejavu-core)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need_apt+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" iptables ca-certificates >/dev/null
fi

# --- Compose v2 from Debian trixie (own sources list + own lists dir; mirror taken from this machine) ---
plugin_dir="${HOME:-/root}/.docker/cli-plugins"
if ! docker compose version >/dev/null 2>&1; then
  mirror=$(
    { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true
      grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}' || true
    } 2>/dev/null | grep -E '/debian/?$' | head -n1 || true)
  [ -n "$mirror" ] || { log "no Debian mirror found in apt sources"; exit 1; }
  work=/var/tmp/shiparr-trixie
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/x"
  echo "deb [trusted=yes] ${mirror%/} trixie main" > "$work/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
            -o "APT::Get::List-Cleanup=0" -o "Acquire::Languages=none")
  log "fetching docker-compose (v2) from trixie via $mirror"
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work" && rm -f docker-compose_*.deb && apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root download docker-compose >/dev/null)
  dpkg -x "$work"/docker-compose_*.deb "$work/x"
  mkdir -p "$plugin_dir"
  install -m 0755 "$work/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugin_dir/docker-compose"
fi
docker compose version >&2

# --- Start dockerd unless an engine already answers ---
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  setsid nohup dockerd >/var/log/shiparr-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up"; tail -n 50 /var/log/shiparr-dockerd.log >&2; exit 1; }
fi
log "docker engine ready: $(docker version --format '{{.Server.Version}}')"
