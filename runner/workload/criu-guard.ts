/**
 * `criu` under a guard that dies with the runner and takes criu's whole process tree with it.
 *
 * PR_SET_PDEATHSIG alone is not enough: it is cleared on fork, and `criu restore` forks the restored
 * tree's namespace init itself — a runner killed mid-restore left that child (still running criu's
 * code, outside any namespace that would die) and `criu dump`/`restore` themselves alive. The guard,
 * a bash with a parent-death signal of SIGTERM, runs criu as its child; on SIGTERM (the runner died,
 * or the runtime gives up on the call) it stops its descendants (found in /proc), SIGKILLs them all
 * (a PID namespace's init takes its namespace with it) and exits 143. Otherwise it exits with
 * criu's status. fds 3+ reach criu unchanged (`--inherit-fd` needs them); stdin is /dev/null.
 */
const GUARD = [
  // Every descendant of the guard (not only of criu's: a task forked with CLONE_PARENT is the guard's child), read
  // with builtins only: a fork per /proc read (`$(cat …)`) made the walk take ~0.9 s on a loaded 2-core machine,
  // and a restored task ran on that long after its runner died (test/chaos.test.ts saw its side effects twice).
  'kids() { local f c k; for f in /proc/$1/task/*/children; do k=(); read -r -a k < "$f" 2>/dev/null; all+=("${k[@]}"); for c in "${k[@]}"; do kids "$c"; done; done; }',
  // Stopped first and listed again until no new one appears — criu may fork while the list is being made.
  'end() { local seen="" now i; for i in 1 2 3 4 5 6 7 8; do all=(); kids $$; now="${all[*]}"; kill -STOP "${all[@]}" 2>/dev/null; [ "$now" = "$seen" ] && break; seen=$now; done; kill -KILL $seen "${all[@]}" 2>/dev/null; exit 143; }',
  "trap end TERM",
  '"$0" "$@" &',
  "c=$!",
  'wait "$c"',
  "s=$?",
  // A TERM that lands between fork and wait is handled by the trap; a normal exit reports criu's status.
  'exit "$s"',
].join("\n");

export interface CriuGuardTools {
  setpriv: string;
  bash: string;
}

/** argv for `spawn`/`execFile`: a criu command line (`criu args…`, criu-user.ts's `criuCommand`) under the guard. */
export function guardedCriu(tools: CriuGuardTools, command: string[]): [string, string[]] {
  return [tools.setpriv, ["--pdeathsig", "TERM", tools.bash, "-c", GUARD, ...command]];
}
