# Sourced by scripts/setup-system.sh (bash): naming each step so a failure says which one failed,
# and waiting for the package manager's locks instead of failing when another install or an
# unattended upgrade holds them.

SETUP_STEP="starting"
SETUP_LOG_PREFIX="${SETUP_LOG_PREFIX:-setup-system}"
# The locks apt and dpkg take (fcntl locks; flock(1) holders are seen too).
read -r -a APT_LOCKS <<< "${STASIS_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}"
APT_LOCK_TIMEOUT="${STASIS_APT_LOCK_TIMEOUT:-600}"

log() { printf '%s: %s\n' "$SETUP_LOG_PREFIX" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# step "what is being done": names what a failure from here on interrupted.
step() { SETUP_STEP="$*"; }

# With `set -eE`, any failing command ends setup with the step it interrupted.
report_failed_step() {
  local code=$?
  log "error: setup failed while ${SETUP_STEP} (exit ${code}; the output above says why)"
  exit "$code"
}
trap report_failed_step ERR

# The pid holding a lock on `file` (from /proc/locks: POSIX and FLOCK locks alike), or nothing.
lock_holder() {
  local file=$1 ino
  [ -e "$file" ] || return 0
  ino="$(stat -c %i "$file")" || return 0
  awk -v ino="$ino" '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9a-f]+:[0-9a-f]+:[0-9]+$/) { split($i, p, ":"); if (p[3] == ino) { print $(i - 1); exit } } }' /proc/locks
}

# Waits until no apt/dpkg lock is held, saying who holds it; fails after APT_LOCK_TIMEOUT seconds.
wait_for_apt_lock() {
  local start now file pid said=""
  start=$(date +%s)
  for (( ; ; )); do
    pid=""
    for file in "${APT_LOCKS[@]}"; do
      pid="$(lock_holder "$file")"
      [ -n "$pid" ] && break
    done
    [ -z "$pid" ] && { [ -n "$said" ] && log "the package manager's lock is free"; return 0; }
    now=$(date +%s)
    if [ -z "$said" ] || [ $(( now - said )) -ge 30 ]; then
      log "waiting for $file, held by pid $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-80 || echo '?')) — another install or an unattended upgrade; up to ${APT_LOCK_TIMEOUT} s"
      said=$now
    fi
    if [ $(( now - start )) -ge "$APT_LOCK_TIMEOUT" ]; then
      log "error: $file is still held by pid $pid after ${APT_LOCK_TIMEOUT} s"
      return 1
    fi
    sleep 1
  done
}

# apt-get once the locks are free; apt itself also waits for dpkg's lock if it is taken meanwhile.
apt_get() {
  wait_for_apt_lock
  apt-get -o "DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT}" "$@"
}
