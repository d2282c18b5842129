/**
 * The shell script that sets up a build sandbox's mounts and drops to its user
 * (`builder/isolated-build/`; task processes get a root built from nothing instead,
 * `runner/workload/task-root.sh`). It runs
 * as root (real, or of a user namespace) as the first program inside fresh mount and PID
 * namespaces (`unshare --mount --pid --fork --propagation private`), so nothing it mounts is seen
 * outside, and it `exec`s the command last: the command keeps its PID.
 *
 * Arguments: `stage uid gid pdeathsig cwd op… -- command…`
 * - `stage`: an existing dir; a tmpfs is mounted over it (in this namespace only) to keep the
 *   exposed paths while their ancestors are covered. It may itself be covered afterwards: the
 *   script works in it through its cwd, and detaches it through /proc/self/cwd at the end.
 * - `uid`/`gid`: the user to become (empty: stay, e.g. in a user namespace); `pdeathsig`: a signal
 *   the command gets when its parent dies (empty: none) — a change of uid clears the one `unshare
 *   --kill-child` set, so it is set again after; `cwd`: where the command starts (empty: where the
 *   script started), entered by path once everything is mounted: a cwd under a covered dir would
 *   otherwise lead, through `..`, to what is covered.
 * - ops, in order:
 *   `stage N PATH`   bind PATH into the stage as N (before anything covers it)
 *   `tmpfs PATH OPTS` a fresh tmpfs at PATH (`mode=0755` over an ancestor others cannot enter,
 *                    a task's private /tmp); its source is `stasis-sandbox`
 *   `restore N PATH` bind the staged N back at PATH (its mount point made inside what covers it)
 *   `hide PATH`      an empty read-only tmpfs over a dir (source `stasis-hidden`), /dev/null over a file
 *   `bind SRC DST`   bind SRC over DST
 */
export const SANDBOX_MOUNT_SCRIPT = `
stage="$1"; uid="$2"; gid="$3"; pdeathsig="$4"; cwd="$5"; shift 5
origin="$PWD"; staged=""
while [ "$1" != "--" ]; do
  case "$1" in
    stage)
      if [ -z "$staged" ]; then mount -t tmpfs -o size=16k,mode=0700 stasis-stage "$stage"; cd "$stage"; staged=1; fi
      mkdir "$2"; mount --rbind "$3" "$2"; shift 3;;
    tmpfs) mount -t tmpfs -o "$3" stasis-sandbox "$2"; shift 3;;
    restore) mkdir -p "$3"; mount --rbind "$2" "$3"; shift 3;;
    hide)
      if [ -d "$2" ]; then mount -t tmpfs -o size=16k,mode=0555 stasis-hidden "$2"; elif [ -e "$2" ]; then mount --bind /dev/null "$2"; fi
      shift 2;;
    bind) mount --bind "$2" "$3"; shift 3;;
    *) echo "stasis sandbox: unknown op $1" >&2; exit 125;;
  esac
done
shift
if [ -n "$staged" ]; then umount -c -l /proc/self/cwd; fi
cd "\${cwd:-$origin}"
set -- --no-new-privs \${pdeathsig:+--pdeathsig "$pdeathsig"} -- "$@"
if [ -n "$uid" ]; then set -- --reuid="$uid" --regid="$gid" --clear-groups "$@"; fi
exec setpriv "$@"
`;

export type SandboxOp =
  | { op: "tmpfs"; path: string; options: string }
  | { op: "hide"; path: string }
  | { op: "bind"; from: string; to: string };

export interface SandboxMounts {
  /** An existing dir the script may mount a tmpfs over (in its namespace only). */
  stage: string;
  /** Paths that stay visible whatever covers them: bound back at their own path after `before`. */
  expose: string[];
  /** Ops before the exposed paths are bound back (covers, and hides of their ancestors). */
  before: SandboxOp[];
  /** Ops after (hides inside exposed paths, binds). */
  after: SandboxOp[];
  user: { uid: number; gid: number } | null;
  pdeathsig?: string;
  cwd?: string;
}

/** argv (after the `unshare … --`) that runs `command` in the sandbox described by `mounts`. */
export function sandboxArgv(mounts: SandboxMounts, command: string[]): string[] {
  const ops: string[] = [];
  const emit = (op: SandboxOp) => {
    if (op.op === "tmpfs") ops.push("tmpfs", op.path, op.options);
    else if (op.op === "hide") ops.push("hide", op.path);
    else ops.push("bind", op.from, op.to);
  };
  mounts.expose.forEach((path, i) => ops.push("stage", String(i + 1), path));
  mounts.before.forEach(emit);
  mounts.expose.forEach((path, i) => ops.push("restore", String(i + 1), path));
  mounts.after.forEach(emit);
  const user = mounts.user ? [String(mounts.user.uid), String(mounts.user.gid)] : ["", ""];
  return ["/bin/sh", "-euc", SANDBOX_MOUNT_SCRIPT, "stasis-sandbox", mounts.stage, ...user, mounts.pdeathsig ?? "", mounts.cwd ?? "", ...ops, "--", ...command];
}
