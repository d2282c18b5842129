#!/usr/bin/env bash
# Installs the system packages Stasis needs on Debian 12, idempotently (run as root):
#   - CRIU >= 4.2 (Debian 12's 3.17 fails `criu check`; trixie's 4.1 cannot dump inet sockets on
#     kernels >= 6.16). It comes from Debian forky (or sid), fetched with a PRIVATE apt config and
#     an empty dpkg status, unpacked with `dpkg -x` into /opt/stasis/criu/root, its binary set (patchelf)
#     to run with that prefix's own dynamic loader and libraries, so the host's apt sources and libc
#     are never touched.
#   - From Debian 12: runc, skopeo, umoci, docker-registry, postgresql, zstd, util-linux, git, patchelf,
#     chromium (the dashboard tests drive it with playwright-core; no browser download), podman
#     (4.3) and docker.io (Docker 20.10 with its containerd): the `--workload container` runtime
#     talks to either engine's API socket. Neither engine's service is started here (nor at boot):
#     a host starts the one it uses, and the tests start private ones of their own. Docker's CLI is
#     /usr/bin/docker (a `docker` earlier on PATH may be a newer CLI than this daemon).
# Progress goes to stderr. When everything is present it only runs `criu check` (well under 1 s).
set -eEuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup-steps.sh"

CRIU_PREFIX="${STASIS_CRIU_PREFIX:-/opt/stasis/criu}"
CRIU_WRAPPER="${STASIS_CRIU_WRAPPER:-/usr/local/bin/criu}"
CRIU_SUITES="${STASIS_CRIU_SUITES:-forky sid}"
DEBIAN_MIRROR="${STASIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
APT_PACKAGES=(runc skopeo umoci docker-registry postgresql zstd util-linux git chromium podman docker.io patchelf)

[ "$(id -u)" = 0 ] || die "must run as root (CRIU and apt need it)"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian 12 only"

# --- Debian 12 packages ---------------------------------------------------------------------

is_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]; }

step "checking which Debian packages are installed"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do is_installed "$pkg" || missing+=("$pkg"); done

if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} from Debian 12 (apt-get)"
  log "installing from Debian 12: ${missing[*]}"
  # Keep package services (postgresql, docker-registry, podman's, docker's and containerd's) from
  # starting: tests start their own (a host's dockerd would also rewrite its iptables FORWARD chain).
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  step "updating the package lists (apt-get update)"
  apt_get update -qq >&2
  step "installing ${missing[*]} (apt-get install)"
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends "${missing[@]}" >&2
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  trap - EXIT
  step "setting the packaged PostgreSQL cluster to manual start"
  if printf '%s\n' "${missing[@]}" | grep -qx postgresql; then
    # The packaged cluster must neither run nor start at boot; tests run their own servers.
    for conf in /etc/postgresql/*/*/start.conf; do
      [ -f "$conf" ] || continue
      ver="$(basename "$(dirname "$(dirname "$conf")")")"; name="$(basename "$(dirname "$conf")")"
      pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
      echo manual > "$conf"
      log "postgresql cluster $ver/$name stopped and set to manual start"
    done
  fi
else
  log "Debian packages present: ${APT_PACKAGES[*]}"
fi

# --- CRIU >= 4.2 ------------------------------------------------------------------------------

criu_ok() {
  command -v criu >/dev/null || return 1
  local v
  v="$(criu --version 2>/dev/null | sed -n 's/^Version: *\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')"
  [ -n "$v" ] || return 1
  set -- $v
  { [ "$1" -gt 4 ] || { [ "$1" -eq 4 ] && [ "$2" -ge 2 ]; }; } || return 1
  criu check >/dev/null 2>&1
}

# The criu binary names its own dynamic loader and library dir (patchelf: PT_INTERP and DT_RPATH, which,
# unlike RUNPATH, also serves the libraries' own dependencies), and $CRIU_WRAPPER is a symlink to it: each
# criu call is one exec, not a shell's and then the loader's (~3–4 ms per dump and per restore on a
# 2-core VM: bench/suspend-resume, twentieth round). An older install's shell wrapper is replaced;
# `installed`: this script just installed criu, and $CRIU_WRAPPER is made the symlink whatever it was.
criu_runs_directly() {
  local bin="$CRIU_PREFIX/root/usr/sbin/criu" lib="$CRIU_PREFIX/root/usr/lib/x86_64-linux-gnu"
  local loader="$lib/ld-linux-x86-64.so.2" rpath="$lib:$CRIU_PREFIX/root/lib/x86_64-linux-gnu"
  [ -x "$bin" ] && [ -e "$loader" ] || return 0
  if [ "$(patchelf --print-interpreter "$bin" 2>/dev/null)" != "$loader" ] || [ "$(patchelf --print-rpath "$bin" 2>/dev/null)" != "$rpath" ]; then
    cp -p "$bin" "$bin.direct"
    patchelf --set-interpreter "$loader" --force-rpath --set-rpath "$rpath" "$bin.direct"
    "$bin.direct" --version >/dev/null 2>&1 || { rm -f "$bin.direct"; die "criu does not start after patchelf set its loader to $loader"; }
    mv "$bin.direct" "$bin"
    log "criu runs with its own loader and libraries directly (no wrapper script)"
  fi
  # Otherwise only a wrapper this script wrote (or its symlink) is replaced: a criu of the host's own stays on PATH.
  if [ -L "$CRIU_WRAPPER" ] && [ "$(readlink "$CRIU_WRAPPER")" = "$bin" ]; then return 0; fi
  if [ "${1:-}" != installed ] && [ -e "$CRIU_WRAPPER" ] && ! grep -qF "$CRIU_PREFIX/root" "$CRIU_WRAPPER" 2>/dev/null; then return 0; fi
  mkdir -p "$(dirname "$CRIU_WRAPPER")"
  ln -sfn "$bin" "$CRIU_WRAPPER.tmp"
  mv -T "$CRIU_WRAPPER.tmp" "$CRIU_WRAPPER"
  hash -r
  log "$CRIU_WRAPPER -> $bin"
}

install_criu() {
  local apt_dir="$CRIU_PREFIX/apt" stage="$CRIU_PREFIX/root.new" suite
  [ -r "$KEYRING" ] || die "$KEYRING missing: install debian-archive-keyring"
  mkdir -p "$apt_dir/etc/empty" "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
  : > "$apt_dir/status" # empty dpkg status: apt resolves criu's whole library closure
  local -a opts=(
    -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list" -o "Dir::Etc::sourceparts=$apt_dir/etc/empty"
    -o "Dir::Etc::preferences=$apt_dir/etc/preferences" -o "Dir::Etc::preferencesparts=$apt_dir/etc/empty"
    -o "Dir::State=$apt_dir/state" -o "Dir::State::status=$apt_dir/status" -o "Dir::Cache=$apt_dir/cache"
    -o Acquire::Languages=none -o APT::Architectures::=amd64 -o Debug::NoLocking=1
    -o APT::Install-Recommends=false -o Dpkg::Use-Pty=0
  )
  : > "$apt_dir/etc/preferences"
  for suite in $CRIU_SUITES; do
    log "fetching criu and its libraries from Debian $suite (private apt config in $apt_dir)"
    echo "deb [signed-by=$KEYRING] $DEBIAN_MIRROR $suite main" > "$apt_dir/etc/sources.list"
    rm -f "$apt_dir/cache/archives/"*.deb
    if apt-get "${opts[@]}" -qq update >&2 \
      && apt-get "${opts[@]}" -qq -y install --download-only criu >&2; then
      break
    fi
    log "Debian $suite did not work, trying the next suite"
    suite=""
  done
  [ -n "${suite:-}" ] || die "could not download criu from any of: $CRIU_SUITES"

  rm -rf "$stage"; mkdir -p "$stage"
  local deb
  for deb in "$apt_dir/cache/archives/"*.deb; do dpkg -x "$deb" "$stage"; done
  [ -x "$stage/usr/sbin/criu" ] || die "criu binary missing from the downloaded packages"
  [ -e "$stage/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] || die "dynamic loader missing from the download"
  rm -rf "$CRIU_PREFIX/root.old"
  [ -d "$CRIU_PREFIX/root" ] && mv "$CRIU_PREFIX/root" "$CRIU_PREFIX/root.old"
  mv "$stage" "$CRIU_PREFIX/root"
  rm -rf "$CRIU_PREFIX/root.old" "$apt_dir/cache/archives/"*.deb

  criu_runs_directly installed
}

step "checking CRIU"
if criu_ok; then
  log "CRIU present: $(criu --version | head -1) at $(command -v criu)"
else
  if command -v criu >/dev/null; then
    log "found $(criu --version 2>/dev/null | head -1 || echo 'an unusable criu') at $(command -v criu): need >= 4.2 passing 'criu check'"
  fi
  step "installing CRIU >= 4.2 from Debian ${CRIU_SUITES} into $CRIU_PREFIX"
  start=$(date +%s)
  install_criu
  log "installed CRIU $("$CRIU_WRAPPER" --version | sed -n 's/^Version: *//p') in $(( $(date +%s) - start )) s -> $CRIU_WRAPPER"
  [ "$(command -v criu)" = "$CRIU_WRAPPER" ] || log "warning: 'criu' on PATH is $(command -v criu), not $CRIU_WRAPPER"
fi

# CRIU probes the kernel (~30 features: a network namespace with a veth pair among them) at the start of
# every dump and restore, and keeps what it found in /run/criu.kdat — only when /run is a tmpfs, so the
# cache goes with a reboot. Where /run is on disk (this kind of VM, many containers) it probes every time:
# ~35 ms of each criu call here (bench/suspend-resume, eighteenth round). Our own copy of criu keeps the
# cache in /dev/criu.kdat instead: /dev is a tmpfs (devtmpfs) on Linux hosts and in containers, is gone
# with a reboot too, and only root writes in it. The path is a string in the binary, the same length,
# changed in place; a criu this script did not install is left as it is.
CRIU_KDAT_FROM="/run/criu.kdat"
CRIU_KDAT_TO="/dev/criu.kdat"
keep_kerndat_cache() {
  local bin="$CRIU_PREFIX/root/usr/sbin/criu" found
  [ -x "$bin" ] || return 0
  LC_ALL=C grep -qaF "$CRIU_KDAT_TO" "$bin" && return 0
  found="$(LC_ALL=C grep -oaF "$CRIU_KDAT_FROM" "$bin" | wc -l)"
  if [ "$found" != 1 ]; then
    log "warning: $bin names $CRIU_KDAT_FROM $found times, not once: its kernel probe stays uncached where /run is not a tmpfs"
    return 0
  fi
  cp -p "$bin" "$bin.kdat"
  LC_ALL=C sed -i 's|/run/criu\.kdat\x00|/dev/criu.kdat\x00|' "$bin.kdat"
  [ "$(cmp -l "$bin" "$bin.kdat" | wc -l)" = 3 ] || { rm -f "$bin.kdat"; die "changing criu's kerndat cache path changed other bytes than /run -> /dev"; }
  mv "$bin.kdat" "$bin"
  log "criu keeps its kernel probe's results in $CRIU_KDAT_TO"
}
keep_kerndat_cache
criu_runs_directly

step "running criu check"
# `criu check` must pass; the RLIMIT_NOFILE / kdat cache lines it prints here are harmless.
if out="$(criu check 2>&1)"; then
  log "criu check: $(printf '%s\n' "$out" | tail -1)"
else
  printf '%s\n' "$out" >&2
  die "criu check failed"
fi
