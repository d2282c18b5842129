import { writeFileSync } from "node:fs";
import path from "node:path";
import { bashScript } from "./bash-script.ts";
import { RESTORE_ROOT_FILL, RESTORE_ROOT_MOUNT, RESTORE_SCRATCH_FILL, RESTORE_SCRATCH_MOUNTS, SCRATCH_MOUNTS } from "./task-root.ts";

/**
 * `criu` under a guard that dies with the runner and takes criu's whole process tree with it.
 *
 * PR_SET_PDEATHSIG alone is not enough: it is cleared on fork, and `criu restore` forks the restored
 * tree's namespace init itself — a runner killed mid-restore left that child (still running criu's
 * code, outside any namespace that would die) and `criu dump`/`restore` themselves alive. The guard,
 * a bash with a parent-death signal of SIGTERM, runs criu as its child; on SIGTERM (the runner died,
 * or the runtime gives up on the call) it stops criu and kills each child of criu that is a PID
 * namespace's init (its namespace dies with it: a restored task goes first), then stops its other
 * descendants (found in /proc), SIGKILLs them all and exits 143. Otherwise it exits with
 * criu's status. fds 3+ reach criu unchanged (`--inherit-fd` needs them); stdin is /dev/null.
 */
const GUARD_TRAP = [
  // Every descendant of the guard (not only of criu's: a task forked with CLONE_PARENT is the guard's child), read
  // with builtins only: a fork per /proc read (`$(cat …)`) made the walk take ~0.9 s on a loaded 2-core machine,
  // and a restored task ran on that long after its runner died (test/chaos.test.ts saw its side effects twice).
  'kids() { local f c k; for f in /proc/$1/task/*/children; do k=(); read -r -a k 2>/dev/null < "$f"; all+=("${k[@]}"); for c in "${k[@]}"; do kids "$c"; done; done; }',
  // First criu is stopped and each child of it that is a PID namespace's init (NSpid ends in 1: after a restore, the
  // task's) is killed, and its namespace dies with it — before the walk below (two or more passes over the tree),
  // which a loaded host made long enough for a restored task to record a side effect after its runner was killed
  // (test/chaos.test.ts). Any other child is left to the walk: killed now, its own children would escape it.
  'first() { local f k p key a b; kill -STOP "$c" 2>/dev/null; for f in /proc/$c/task/*/children; do k=(); read -r -a k 2>/dev/null < "$f"; for p in "${k[@]}"; do while read -r key a b _; do [ "$key" = NSpid: ] || continue; [ "$b" = 1 ] && kill -KILL "$p" 2>/dev/null; break; done 2>/dev/null < "/proc/$p/status"; done; done; }',
  // Then every descendant, stopped and listed again until no new one appears — criu may fork while the list is being made.
  // Its stderr goes to /dev/null first: it is a pipe to the runner, which is gone, and a message about a process that
  // vanished mid-walk (its /proc dir read after it died) made this bash die of SIGPIPE before its kill, leaving criu
  // stopped and alive (test/e2e-runner-kill-leftovers.test.ts).
  'end() { local seen="" now i; exec 2>/dev/null; first; for i in 1 2 3 4 5 6 7 8; do all=(); kids $$; now="${all[*]}"; kill -STOP "${all[@]}" 2>/dev/null; [ "$now" = "$seen" ] && break; seen=$now; done; kill -KILL $seen "${all[@]}" 2>/dev/null; exit 143; }',
  "trap end TERM",
];

/**
 * Runs criu (`"$@"`) as the guard's child and, when `$beside` is not empty, that shell command beside
 * it (a dump's root archive, task-root.ts `saveRootBeside`), forked after criu so criu starts first.
 * Exits with criu's status once both have ended; 125 if criu succeeded and the command beside did not.
 */
const RUN = [
  '"$@" &',
  "c=$!",
  "b=",
  '[ -z "$beside" ] || { /bin/sh -c "$beside" & b=$!; }',
  'wait "$c"',
  "s=$?",
  // A TERM that lands between fork and wait is handled by the trap; a normal exit reports criu's status.
  '[ -z "$b" ] || wait "$b" || [ "$s" -ne 0 ] || s=125',
  'exit "$s"',
];

const GUARD = [...GUARD_TRAP, 'beside="$0"', ...RUN].join("\n");

/**
 * A standby guard's command (`handCommand`): the path of a file holding it comes on stdin, the file
 * holds its fields: the dir to run in, the shell command to run beside (RUN; empty: none), then the
 * command line. bash reads a pipe one byte per read(2) (it cannot give back what it read past a
 * delimiter), ~1.7 µs a byte on a 2-core VM: ~3.5 ms for a dump's ~2 KB command; a file it reads in
 * blocks. Stdin closed before a path, or a file without a command line, it runs nothing.
 */
const READ_COMMAND = [
  "IFS= read -r -d '' f || exit 0",
  "mapfile -t -d '' cmd < \"$f\" || exit 127",
  '[ "${#cmd[@]}" -ge 3 ] || exit 0',
  'cd -- "${cmd[0]}" || exit 127',
  'beside="${cmd[1]}"',
  'set -- "${cmd[@]:2}"',
  "exec </dev/null",
];

/**
 * The guard started ahead (criu-standby.ts): it waits for its command (READ_COMMAND) and runs it as
 * the guard above. Its stdin
 * closed with no command, it exits 0 having run nothing; a TERM while it waits ends it (143).
 */
const STANDBY_GUARD = [
  ...GUARD_TRAP,
  ...READ_COMMAND,
  ...RUN,
].join("\n");

/** What a root standby guard prints once it has filled a checkpoint's root and scratch (ROOT_STANDBY_GUARD). */
export const PREPARED = "prepared";

/**
 * A standby guard for a sandboxed task's restore, started in a mount namespace of its own with the
 * root's tmpfs already mounted (what restoreRootPrefix's `unshare`, `sh` and first mount do per
 * restore, ~6 ms on a 2-core VM: bench/suspend-resume, seventeenth round), and a tmpfs over each dir
 * of its scratch for the task's /tmp and /dev/shm, of size `AHEAD` (remounted to the size handed when
 * that differs). It is handed two parts, each field ending in a NUL, together or apart:
 * - the checkpoint's part: the root's archive, the scratch's archive (or an empty field: a checkpoint
 *   whose tmpfs mounts CRIU restores itself) and the scratch mounts' size. It fills the root, makes it
 *   read-only and fills the scratch, then prints PREPARED on stdout: a runner may hand this part as soon
 *   as it has dumped the task, and the restore finds it done (~18–23 ms of `tar`, `mount` and `tar` on a
 *   2-core VM: bench/suspend-resume, twentieth round);
 * - the restore's part (READ_COMMAND): the dir to run in and criu's command line, which it runs as the guard above.
 * Arguments: `OWNER ROOT SCRATCH AHEAD [TEMPLATE]`. With TEMPLATE (a root archive, root-templates.ts) it
 * fills its root from it and makes it read-only before it reads anything; a part whose root archive is an
 * empty field then keeps that root (the runtime hands it so when the checkpoint's root archive is the same),
 * one with an archive gets a fresh root from it. A root it cannot mount or fill ahead ends it at once (125),
 * before it reads anything; stdin closed before a whole part, it exits 0 having run nothing.
 */
const ROOT_STANDBY_GUARD = [
  ...GUARD_TRAP,
  'root="$2"; scratch="$3"; size="$4"; ahead="$4"; template="$5"',
  `${RESTORE_ROOT_MOUNT} || exit 125`,
  ...RESTORE_SCRATCH_MOUNTS.map((line) => `${line} || exit 125`),
  // A template (root-templates.ts), filled ahead: a part whose root archive field is empty keeps it.
  `if [ -n "$template" ]; then archive="$template"; ${RESTORE_ROOT_FILL.map((line) => `${line} || exit 125`).join("; ")}; fi`,
  "part=()",
  "for i in 1 2 3; do IFS= read -r -d '' a || exit 0; part+=(\"$a\"); done",
  'archive="${part[0]}"; scratch_archive="${part[1]}"; size="${part[2]}"',
  // Another root than the template's: a fresh tmpfs for it. No template and no archive: nothing to restore into.
  'if [ -z "$archive" ]; then [ -n "$template" ] || exit 126; else',
  `  if [ -n "$template" ]; then umount "$root" && ${RESTORE_ROOT_MOUNT} || exit 126; fi`,
  ...RESTORE_ROOT_FILL.map((line) => `  ${line} || exit 126`),
  "fi",
  'if [ -n "$scratch_archive" ]; then',
  `  if [ "$size" != "$ahead" ]; then ${SCRATCH_MOUNTS.map((m) => `mount -o "remount,size=$size" "$scratch/${m.dir}" || exit 126`).join("; ")}; fi`,
  `  ${RESTORE_SCRATCH_FILL} || exit 126`,
  "fi",
  `echo ${PREPARED}`,
  ...READ_COMMAND,
  ...RUN,
].join("\n");

/** Which standby guard: "root" waits in a mount namespace of its own with a sandboxed restore's root mounted (rootStandbyGuard). */
export type GuardKind = "plain" | "root";

export interface CriuGuardTools {
  setpriv: string;
  bash: string;
}

/** argv for `spawn`/`execFile`: a criu command line (`criu args…`, criu-user.ts's `criuCommand`) under the guard, `beside` it a shell command (RUN). */
export function guardedCriu(tools: CriuGuardTools, command: string[], beside = ""): [string, string[]] {
  return [tools.setpriv, ["--pdeathsig", "TERM", ...bashScript(tools.bash, GUARD, [beside, ...command])]];
}

/** What a guard runs: criu's command line (criu-user.ts's `criuCommand`) in `cwd`, and `beside` it a shell command (RUN). */
export interface GuardCommand {
  cwd: string;
  command: string[];
  beside?: string;
}

/** argv for `spawn` of a guard that waits for its command on stdin (`handCommand`); `owner` names whose it is in `ps`. */
export function standbyGuard(tools: CriuGuardTools, owner = ""): [string, string[]] {
  return [tools.setpriv, ["--pdeathsig", "TERM", ...bashScript(tools.bash, STANDBY_GUARD, ["stasis-criu-guard", owner])]];
}

/**
 * argv for `spawn` of a guard for sandboxed restores (ROOT_STANDBY_GUARD) that mounts its root at `root`
 * and a tmpfs of `aheadSize` over each SCRATCH_MOUNTS dir of `scratch`, and waits; hand it
 * `[archive, scratchArchive-or-"", size, criu…]`.
 */
export function rootStandbyGuard(tools: CriuGuardTools, root: string, scratch: string, aheadSize: string, owner = "", template?: string): [string, string[]] {
  return [tools.setpriv, ["--pdeathsig", "TERM", "unshare", "--mount", "--propagation", "private", ...bashScript(tools.bash, ROOT_STANDBY_GUARD, ["stasis-criu-root-guard", owner, root, scratch, aheadSize, ...(template ? [template] : [])])]];
}

/**
 * Hands a standby guard what it runs (GuardCommand) and closes its stdin; `ahead`: the fields a
 * root standby guard reads first (`handAhead`), when they were not handed before. The command goes
 * through a file in `dir` (READ_COMMAND), which must be the caller's own: a dir of the runner's that
 * only it writes, removed with the call's other files. A command it refuses (a NUL in a field)
 * closes its stdin with nothing written: the guard exits having run nothing. A guard that died
 * meanwhile refuses the write (EPIPE, ignored here): its exit is what the caller sees.
 */
export function handCommand(guard: { stdin: NodeJS.WritableStream | null }, dir: string, { cwd, command, beside = "" }: GuardCommand, ahead: string[] = []): void {
  const fields = [cwd, beside, ...command];
  // All of it, before the file is written: nothing is left of a refused command.
  refuseNul(guard, [...ahead, ...fields]);
  const file = path.join(dir, "guard-command");
  // Synchronous: a small file on the dump's and the restore's critical path.
  writeFileSync(file, nulTerminated(fields), { mode: 0o600 });
  handFields(guard, [...ahead, file], true);
}

/**
 * Hands a root standby guard a checkpoint's part ahead of the restore (ROOT_STANDBY_GUARD: root archive,
 * scratch archive or "", size), keeping its stdin open for `handCommand`. A NUL in a field closes it.
 */
export function handAhead(guard: { stdin: NodeJS.WritableStream | null }, fields: [string, string, string]): void {
  handFields(guard, fields, false);
}

/** Writes `fields` to a guard's stdin, each ending in a NUL, and closes it when `last`; a field holding a NUL closes it with nothing written. */
function handFields(guard: { stdin: NodeJS.WritableStream | null }, fields: string[], last: boolean): void {
  refuseNul(guard, fields);
  const stdin = guard.stdin!;
  stdin.on("error", () => {});
  if (last) stdin.end(nulTerminated(fields));
  else stdin.write(nulTerminated(fields));
}

/** Throws, with the guard's stdin closed (it then exits having run nothing), when a field holds a NUL. */
function refuseNul(guard: { stdin: NodeJS.WritableStream | null }, fields: string[]): void {
  const bad = fields.find((field) => field.includes("\0"));
  if (bad === undefined) return;
  guard.stdin!.on("error", () => {});
  guard.stdin!.end();
  throw new Error(`a command handed to the criu guard cannot hold a NUL byte: ${JSON.stringify(bad)}`);
}

const nulTerminated = (fields: string[]) => fields.map((field) => `${field}\0`).join("");
