#!/bin/sh
# Slims the Dockerfile's runtime-root stage (Debian bookworm + Node + tini, docker-cli, docker-compose, openssh-client)
# down to what the daemon runs: node, tini, the docker CLI and its compose plugin, the ssh client, /bin/sh with
# coreutils, grep, sed, findutils and bash. The final image copies this root filesystem as ONE layer (FROM scratch), so
# what is removed here does not ship at all.
#
#   slim-runtime.sh STRIPPED_NODE
#
# 1. Node: STRIPPED_NODE (the build stage's node after `strip --strip-all`, ~10 MB smaller; the dynamic symbols
#    native addons link against stay) replaces the base's binary; npm, npx, corepack, yarn and Node's headers go.
# 2. Packages only installing, building or administering a system needs (apt, dpkg, perl, debconf, PAM, login tools,
#    filesystem and mount tools, compression tools) are purged with dpkg, so /var/lib/dpkg/status still lists exactly
#    what the image holds (scanners read it); dpkg itself goes last, by hand.
# 3. Files no runtime path opens: ssh's agent/key tools and helpers (the daemon runs only `ssh`), tini-static,
#    ldconfig/localedef, libmvec (nothing links it), shell completions, dpkg's maintainer data.
# Finally every program Shiparr starts is run once, so a missing library fails the build, not a deployment.
set -eu

node_new="${1:?usage: slim-runtime.sh STRIPPED_NODE}"
log() { printf '[slim-runtime] %s\n' "$*"; }

# --- 1. Node ---------------------------------------------------------------------------------------------------
node_path="$(readlink -f "$(command -v node)")"
cat "$node_new" >"$node_path"
rm -f "$node_new"
rm -rf /usr/local/lib/node_modules /usr/local/include/node /usr/local/share/doc/node /usr/local/share/man \
  /usr/local/share/systemtap /opt/yarn-*
rm -f /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg

# --- 2. Packages -----------------------------------------------------------------------------------------------
installed() { dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 == "ii" { print $2 }'; }
only_installed() {
  all="$(installed)"
  for p in "$@"; do
    if printf '%s\n' "$all" | grep -qx "$p"; then printf '%s ' "$p"; fi
  done
}
force='--force-remove-essential --force-depends --force-remove-protected'
purge() {
  pkgs="$(only_installed "$@")"
  [ -n "$pkgs" ] || return 0
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive dpkg --purge $force $pkgs >/tmp/slim-dpkg.log 2>&1 \
    || { tail -n 20 /tmp/slim-dpkg.log >&2; exit 1; }
}
# Everything but what dpkg itself needs to run (diffutils, tar, its compression libraries).
purge apt libapt-pkg6.0 gpgv debian-archive-keyring e2fsprogs libext2fs2 libss2 logsave util-linux util-linux-extra \
  mount libmount1 libsmartcols1 libblkid1 libfdisk1 libgnutls30 libgcrypt20 libgpg-error0 libp11-kit0 libunistring2 \
  libidn2-0 libhogweed6 libnettle8 libtasn1-6 libffi8 libsystemd0 libudev1 liblz4-1 libxxhash0 libseccomp2 libdb5.3 \
  libpam-modules libpam-modules-bin libpam-runtime libpam0g login passwd libsemanage2 libsemanage-common libsepol2 \
  libaudit1 libaudit-common libcap-ng0 libcap2 adduser hostname ncurses-bin bsdutils sysvinit-utils \
  init-system-helpers libdebconfclient0 libuuid1 libfido2-1 libcbor0.8 libedit2 usr-is-merged procps libproc2-0 \
  libncursesw6 libsqlite3-0 libgdbm6 libgdbm-compat4
purge debconf
purge perl-base
DEBIAN_FRONTEND=noninteractive dpkg --purge $force --force-bad-path $(only_installed diffutils) >/tmp/slim-dpkg.log 2>&1 \
  || { tail -n 20 /tmp/slim-dpkg.log >&2; exit 1; }
# dpkg cannot purge itself and the tools it runs: remove their files by its own lists, then their status entries.
last="dpkg tar gzip libzstd1 liblzma5 libbz2-1.0 libmd0 libbsd0"
last="$(only_installed $last)"
for p in $last; do
  list="/var/lib/dpkg/info/$p.list"
  [ -f "$list" ] || list="/var/lib/dpkg/info/$p:amd64.list"
  [ -f "$list" ] || list="$(ls /var/lib/dpkg/info/"$p":*.list 2>/dev/null | head -n1)"
  if [ -n "$list" ] && [ -f "$list" ]; then
    # Files and file symlinks only: directories, and merged-/usr links such as /lib -> usr/lib, are shared.
    while IFS= read -r f; do
      case "$f" in /var/lib/dpkg*) continue ;; esac
      if [ -d "$f" ]; then continue; fi
      if [ -f "$f" ] || [ -L "$f" ]; then rm -f "$f"; fi
    done <"$list"
  fi
done
status=/var/lib/dpkg/status
awk -v drop=" $last " '
  BEGIN { RS = ""; ORS = "\n\n" }
  { split($0, lines, "\n"); name = lines[1]; sub(/^Package: /, "", name); if (index(drop, " " name " ") == 0) print }
' "$status" >"$status.new"
mv "$status.new" "$status"
log "purged packages; left: $(awk '/^Package: /{printf "%s ", $2}' "$status")"

# --- 3. Files --------------------------------------------------------------------------------------------------
rm -f /usr/bin/ssh-agent /usr/bin/ssh-add /usr/bin/ssh-keygen /usr/bin/ssh-keyscan /usr/bin/sftp /usr/bin/scp \
  /usr/bin/ssh-copy-id /usr/bin/tini-static /usr/sbin/ldconfig /usr/bin/localedef /usr/bin/iconv /usr/sbin/iconvconfig \
  /usr/lib/x86_64-linux-gnu/libmvec.so.1 /usr/lib/aarch64-linux-gnu/libmvec.so.1
rm -rf /usr/lib/openssh /usr/lib/x86_64-linux-gnu/gconv /usr/lib/aarch64-linux-gnu/gconv \
  /usr/share/bash-completion /usr/share/zsh /usr/share/fish /usr/share/gcc /usr/share/gdb /usr/share/lintian \
  /usr/share/dpkg /usr/share/debconf /usr/share/perl5 /usr/share/pixmaps /usr/share/menu /usr/share/info \
  /usr/share/man /usr/share/locale /etc/apt /etc/dpkg /etc/cron.daily /etc/logrotate.d /var/cache/* /var/log/* \
  /var/lib/apt /var/lib/dpkg/*-old /var/lib/dpkg/available /var/lib/dpkg/diversions* /var/lib/dpkg/statoverride \
  /var/lib/dpkg/triggers /var/lib/dpkg/updates /tmp/* /var/tmp/* /root/.cache /root/.npm
# dpkg's per-package data: keep the file lists (which package owns what), drop scripts, checksums, symbols.
find /var/lib/dpkg/info -type f ! -name '*.list' -delete

# --- Smoke test: every program the daemon starts, with the libraries they load. ----------------------------------
node -e "process.exit(0)"
tini --version >/dev/null
docker --version
docker compose version
ssh -V
sh -c 'id -u >/dev/null && cat /etc/passwd >/dev/null && stat -c %u / >/dev/null'
log "done"
