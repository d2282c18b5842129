#!/usr/bin/env bash
# Watches a process group (the test suite's, scripts/test.sh) for a stop of the whole group: every
# process of it stopped (state T) on two looks in a row. Twice a fresh-clone run of the suite hung so,
# every process stopped at once, by a stop signal whose sender is not known yet; the CI then waits
# until its own timeout. When it sees one, this prints the group's processes and, where the kernel's
# tracing is writable (root), which process sent a stop signal (19–22) to them, then continues the
# group (SIGCONT) so the run goes on and ends with its own result.
#
# Runs in a process group of its own (started with setsid), so the stop does not reach it. Exits when
# the group is gone, or on SIGTERM. Usage: stop-watch.sh PGID [seconds between looks, default 5]
set -u
pgid="$1"
interval="${2:-5}"
trace="/sys/kernel/tracing/instances/stasis-stop-watch-$$"
if [ -w /sys/kernel/tracing/instances ] && mkdir "$trace" 2>/dev/null; then
  echo 'sig >= 19 && sig <= 22' > "$trace/events/signal/signal_generate/filter" 2>/dev/null &&
    echo 1 > "$trace/events/signal/signal_generate/enable" 2>/dev/null || { rmdir "$trace" 2>/dev/null; trace=""; }
else
  trace=""
fi
cleanup() {
  [ -n "$trace" ] && [ -d "$trace" ] && { echo 0 > "$trace/events/signal/signal_generate/enable"; rmdir "$trace"; } 2>/dev/null
}
trap 'cleanup; exit 0' TERM INT
trap cleanup EXIT

# "all-stopped" when every live process of the group is stopped; "running" otherwise; "gone" when none is left.
group_state() {
  ps -eo pgid=,stat= | awk -v g="$pgid" '$1 == g && $2 !~ /^Z/ { n++; if ($2 !~ /^T/) running = 1 } END { print (n == 0 ? "gone" : running ? "running" : "all-stopped") }'
}

# pid, ppid, state and command line of each process of the group.
members() {
  ps -eo pid=,ppid=,pgid=,stat=,args= | awk -v g="$pgid" '$3 == g { $3 = ""; print }'
}

looks=0
while :; do
  state="$(group_state)"
  [ "$state" = gone ] && exit 0
  if [ "$state" = all-stopped ]; then looks=$((looks + 1)); else looks=0; fi
  if [ "$looks" -ge 2 ]; then
    {
      echo "stop-watch: every process of group $pgid is stopped (a stop signal to the whole group); continuing it. Its processes:"
      members | cut -c1-200 | sed 's/^/stop-watch:   /'
      if [ -n "$trace" ]; then
        pids=" $(members | awk '{ printf "%s ", $1 }')"
        echo "stop-watch: stop signals (19 STOP, 20 TSTP, 21 TTIN, 22 TTOU) to them, sender first:"
        grep -v '^#' "$trace/trace" | while read -r line; do
          target="${line##* pid=}"; target="${target%% *}"
          [[ "$pids" == *" $target "* ]] && echo "stop-watch:   $line"
        done | tail -n 40
      fi
    } >&2
    kill -CONT -- "-$pgid" 2>/dev/null
    looks=0
  fi
  sleep "$interval"
done
