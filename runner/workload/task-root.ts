import { readFileSync } from "node:fs";
import { lstat, readlink, realpath } from "node:fs/promises";
import path from "node:path";
import { shellQuote } from "./shell-quote.ts";
import { VERDICT_WAIT_S } from "./dump-verdict.ts";
import { fileURLToPath } from "node:url";
import { within } from "../../builder/index.ts";
import type { TaskSandbox } from "./task-sandbox.ts";

/** The script that builds a task's root from nothing (its header is the contract). */
export const TASK_ROOT_SCRIPT = readFileSync(fileURLToPath(new URL("./task-root.sh", import.meta.url)), "utf8");

/** CRIU's key of the app dir's bind: bound on restore to the restoring runner's own copy (its path may differ). */
export const APP_MOUNT_KEY = "stasis-app";

/**
 * A bind from the host in the task's root: CRIU cannot dump the host side, so each is declared
 * external at dump time (`--external mnt[mountPoint]:key`) and bound again on restore
 * (`--external mnt[key]:<host path>`): the key is the host path, the same on every runner, except
 * the app dir's (APP_MOUNT_KEY), which the restore binds to its own copy of the deployment.
 */
export interface ExternalMount {
  mountPoint: string;
  key: string;
}

/** Host dirs every Node program needs, bound read-only where they are dirs (a merged /usr makes /bin … symlinks, copied as such). */
const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/** Of /etc, bound read-only: what may change on the host or differ between hosts (a restore elsewhere binds that host's). */
const ETC_BINDS = ["/etc/resolv.conf", "/etc/hosts", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/alternatives"];
/** Of /etc, copied into the root (small, and the same for the task's life). */
const ETC_COPIES = ["/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/localtime", "/etc/timezone", "/etc/ld.so.cache", "/etc/mime.types", "/etc/os-release"];

/** The user names the task sees (`os.userInfo()` fails without a passwd entry). Its home is its own /tmp. */
const passwd = (uid: number, gid: number) => `root:x:0:0:root:/root:/usr/sbin/nologin\ntask:x:${uid}:${gid}:task:/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`;
const group = (gid: number) => `root:x:0:\ntask:x:${gid}:\nnogroup:x:65534:\n`;

/** /dev's character devices, copied from the host where they are what they should be, made otherwise. */
const DEV_NODES: Array<[path: string, major: number, minor: number]> = [["/dev/null", 1, 3], ["/dev/zero", 1, 5], ["/dev/full", 1, 7], ["/dev/random", 1, 8], ["/dev/urandom", 1, 9], ["/dev/tty", 5, 0]];
const DEV_LINKS: Array<[path: string, target: string]> = [["/dev/fd", "/proc/self/fd"], ["/dev/stdin", "/proc/self/fd/0"], ["/dev/stdout", "/proc/self/fd/1"], ["/dev/stderr", "/proc/self/fd/2"]];

type Kind = "dir" | "file" | "link" | null;
async function kindOf(p: string): Promise<Kind> {
  const st = await lstat(p).catch(() => null);
  if (!st) return null;
  if (st.isSymbolicLink()) return "link";
  return st.isDirectory() ? "dir" : "file";
}

async function isDevice(p: string, major: number, minor: number): Promise<boolean> {
  const st = await lstat(p).catch(() => null);
  // Linux's dev_t: minor in bits 0–7 (and 20–31), major in bits 8–19 (and 32–43); these numbers are small.
  return !!st && st.isCharacterDevice() && (st.mode & 0o7777) === 0o666 && ((st.rdev >> 8) & 0xfff) === major && (st.rdev & 0xff) === minor;
}

/** One mount of the task's root, in the order made; paths as the task sees them (the same as on the host). */
export type RootMount =
  /** `source` bound at `path`, read-only or read-write, nosuid and nodev; CRIU sees it as an external mount. */
  | { kind: "ro" | "rw"; source: string; path: string }
  /** An empty read-only tmpfs over a dir inside a bound one (source `stasis-hidden`, mode 0555 root's); a bind below it gets its mount point made there. */
  | { kind: "hide-dir"; path: string }
  /** The root's own /dev/null over a file inside a bound dir. */
  | { kind: "hide-file"; path: string };

export interface TaskRoot {
  /** Host files, symlinks and device nodes copied to their own path. */
  copies: string[];
  /** Ops of task-root.sh, in order (`empty`, `file`, `link`, `node`, then `mounts`, then `copy`). */
  ops: string[];
  /** The binds and covers, parents before children, after /proc, /tmp and /dev/shm. */
  mounts: RootMount[];
  externals: ExternalMount[];
}

/**
 * What goes into a sandboxed task's root (task-root.sh): the system dirs, a few files of /etc, a
 * passwd naming its user, /dev's few nodes, its app dir (`cwd`) and the other exposed paths
 * read-only, the shared dirs read-write, `files` copied, and `hide` paths covered where they lie
 * inside something bound.
 */
export async function taskRootOps(sandbox: TaskSandbox, cwd: string, files: string[] = []): Promise<TaskRoot> {
  const ops: string[] = [];
  const copies: string[] = [];
  const app = path.resolve(cwd);
  const hidden = await Promise.all(sandbox.hide.map((p) => realpath(p).catch(() => path.resolve(p))));
  const wanted: Array<{ mode: "ro" | "rw"; source: string; hostPath: string; key: string }> = [];
  const want = async (mode: "ro" | "rw", hostPath: string, key?: string) => {
    const source = await realpath(hostPath).catch(() => null);
    // The app dir is bound even though it lies in a hidden dir (the image cache); nothing else hidden is.
    if (!source || (key !== APP_MOUNT_KEY && hidden.some((h) => within(source, h) || within(hostPath, h)))) return;
    // Keyed by the path as named (not its target): a restore on another host binds that host's /etc/resolv.conf, wherever it points.
    wanted.push({ mode, source, hostPath, key: key ?? hostPath });
  };

  for (const [p, major, minor] of DEV_NODES) {
    if (await isDevice(p, major, minor)) copies.push(p);
    else ops.push("node", p, String(major), String(minor));
  }
  for (const [p, target] of DEV_LINKS) {
    if ((await readlink(p).catch(() => null)) === target) copies.push(p);
    else ops.push("link", target, p);
  }
  for (const dir of SYSTEM_DIRS) {
    const kind = await kindOf(dir);
    // A merged /usr's /bin … are symlinks: copied as such.
    if (kind === "link") copies.push(dir);
    else if (kind === "dir") await want("ro", dir);
  }
  for (const p of ETC_BINDS) if (await kindOf(p)) await want("ro", p);
  for (const p of ETC_COPIES) if (await kindOf(p)) copies.push(p);
  ops.push("file", "/etc/passwd", passwd(sandbox.uid, sandbox.gid), "file", "/etc/group", group(sandbox.gid));
  await want("ro", app, APP_MOUNT_KEY);
  for (const p of sandbox.expose) await want("ro", path.resolve(p));
  for (const p of sandbox.shared) await want("rw", path.resolve(p));

  // Parents before children (a mount over a parent would hide the child's); a child already visible
  // the same way through its parent is not bound again; of one path, the first wanted wins.
  const depth = (p: string) => p.split("/").length;
  const bound: typeof wanted = [];
  for (const b of [...wanted].sort((x, y) => depth(x.hostPath) - depth(y.hostPath))) {
    const parent = bound.filter((p) => within(b.hostPath, p.hostPath)).at(-1);
    if (parent && (parent.hostPath === b.hostPath || parent.mode === b.mode)) continue;
    bound.push(b);
    // The mount point of a file: made empty in the root (a dir's is made by the mount).
    if ((await kindOf(b.source)) !== "dir") ops.push("empty", b.hostPath);
  }
  // What is hidden but lies inside a bound dir (a runner dir under a shared volume, a secret under
  // /usr), covered before anything bound below it (the app dir inside the hidden image cache).
  const covers: RootMount[] = [];
  for (const h of hidden.filter((h) => bound.some((b) => within(h, b.hostPath) && h !== b.hostPath))) {
    const kind = await kindOf(h);
    if (kind === "dir") covers.push({ kind: "hide-dir", path: h });
    else if (kind) covers.push({ kind: "hide-file", path: h });
  }
  const mounts = [...bound.map((b): RootMount => ({ kind: b.mode, source: b.source, path: b.hostPath })), ...covers].sort((x, y) => depth(x.path) - depth(y.path));
  ops.push("mounts");
  // Copied once everything is mounted: a file under /tmp lands in the task's own /tmp.
  for (const f of files) {
    const kind = await kindOf(f);
    if ((kind === "file" || kind === "link") && !bound.some((b) => within(f, b.hostPath))) ops.push("copy", await realpath(f), path.resolve(f));
  }
  const externals = bound.map((b) => ({ mountPoint: b.hostPath, key: b.key }));
  return { copies, ops, mounts, externals };
}

/** How long `recentTaskRootOps` reuses a root's ops: a host path that changes kind (a file made a link) is seen after that. */
export const TASK_ROOT_REUSE_MS = 10_000;
const recentRoots = new Map<string, { at: number; root: Promise<TaskRoot> }>();

/**
 * `taskRootOps` of the same sandbox, app dir and files, reused for TASK_ROOT_REUSE_MS: a restore's
 * binds check (restore-task.ts) walks ~50 host paths for the binds its sandbox allows, 3–16 ms on a
 * busy 2-core VM on a resume's critical path (bench/suspend-resume, twenty-third round). Not for a
 * start, which builds the root from the ops: a hidden path made since must be covered at once.
 */
export function recentTaskRootOps(sandbox: TaskSandbox, cwd: string, files: string[] = []): Promise<TaskRoot> {
  const key = JSON.stringify([sandbox, path.resolve(cwd), files]);
  const now = Date.now();
  const recent = recentRoots.get(key);
  if (recent && now - recent.at < TASK_ROOT_REUSE_MS) return recent.root;
  for (const [k, r] of recentRoots) if (now - r.at >= TASK_ROOT_REUSE_MS) recentRoots.delete(k);
  const root = taskRootOps(sandbox, cwd, files);
  recentRoots.set(key, { at: now, root });
  // A failure is not kept: the next call looks again.
  root.catch(() => recentRoots.get(key)?.root === root && recentRoots.delete(key));
  return root;
}

/** A path as an fstab(5) field: white space and backslashes octal-escaped. */
const fstabField = (p: string) => p.replace(/[\\\s]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);

/** The fstab(5) of the task's root mounted first: /proc (task-root.sh writes the fstab files under ROOT/proc), its own /tmp and /dev/shm. */
export function taskRootEarlyFstab(root: string, tmpfsOptions: string): string {
  const at = (p: string) => fstabField(path.join(root, p));
  return [`proc ${at("/proc")} proc nosuid,nodev,noexec 0 0`, `stasis-tmp ${at("/tmp")} tmpfs mode=1777,nosuid,nodev,${tmpfsOptions} 0 0`, `stasis-tmp ${at("/dev/shm")} tmpfs mode=1777,nosuid,nodev,${tmpfsOptions} 0 0`].join("\n") + "\n";
}

/** The fstab(5) of the task's binds and covers, in order. */
export function taskRootFstab(root: string, mounts: RootMount[]): string {
  const at = (p: string) => fstabField(path.join(root, p));
  const lines: string[] = [];
  for (const m of mounts) {
    if (m.kind === "hide-dir") lines.push(`stasis-hidden ${at(m.path)} tmpfs size=16k,mode=0555,nosuid,nodev 0 0`);
    else if (m.kind === "hide-file") lines.push(`${at("/dev/null")} ${at(m.path)} none bind 0 0`);
    else lines.push(`${fstabField(m.source)} ${at(m.path)} none bind,${m.kind === "ro" ? "ro," : ""}nosuid,nodev,X-mount.mkdir 0 0`);
  }
  return lines.join("\n") + "\n";
}

/**
 * argv (after `unshare --mount --pid --fork --propagation private --kill-child`) that builds the
 * task's root over `root` (an existing, empty dir of the runner's) and runs `command` in it as the
 * sandbox's user, with parent-death signal KILL.
 */
export function taskRootArgv(sandbox: TaskSandbox, root: string, cwd: string, taskRoot: TaskRoot, command: string[]): string[] {
  // The script splits this list on newlines.
  const listed = taskRoot.copies.find((p) => p.includes("\n"));
  if (listed !== undefined) throw new Error(`a path of the task's root holds a newline: ${JSON.stringify(listed)}`);
  const early = taskRootEarlyFstab(root, `size=${scratchSize(sandbox)}`);
  return ["/bin/sh", "-c", TASK_ROOT_SCRIPT, "stasis-task-root", root, String(sandbox.uid), String(sandbox.gid), "KILL", path.resolve(cwd), taskRoot.copies.join("\n"), early, taskRootFstab(root, taskRoot.mounts), ...taskRoot.ops, "--", ...command];
}

/** Beside CRIU's images: the files of a sandboxed task's root tmpfs (CRIU dumps a namespace's root mount as the restore's `--root`, not its content). */
export const ROOT_ARCHIVE = "stasis-root.tar";

/** The size of each of a sandboxed task's own tmpfs mounts (/tmp, /dev/shm), as tmpfs's `size=` takes it. */
export const scratchSize = (sandbox: { tmpMb?: number } | undefined) => `${sandbox?.tmpMb ?? 256}m`;

/**
 * Beside CRIU's images: the content of a sandboxed task's /tmp and /dev/shm (tmpfs mounts of its own),
 * as `./tmp` and `./shm`. The runner saves and restores it, and CRIU takes both mounts as external
 * (SCRATCH_MOUNTS): CRIU itself would fork a `tar` and a `gzip` per tmpfs on each dump and each
 * restore, 6–7 ms each here (bench/suspend-resume, nineteenth round).
 */
export const SCRATCH_ARCHIVE = "stasis-scratch.tar";
/** The task's own tmpfs mounts: where the task sees each, its key for CRIU's `--external`, and its dir in SCRATCH_ARCHIVE and a restore's scratch dir. */
export const SCRATCH_MOUNTS = [
  { mountPoint: "/tmp", key: "stasis-tmp", dir: "tmp" },
  { mountPoint: "/dev/shm", key: "stasis-shm", dir: "shm" },
] as const;

/**
 * `tar --create` (`args`: archive, dir, what to store) of a sandboxed task's files, in shell: each named
 * dir's own file system only, so a dir mounted below one (a dir shared with the task) is stored as its
 * entry alone. Another process writing in that shared dir meanwhile changes the entry as tar reads it:
 * tar's exit 1, "file changed as we read it", is no failure here (CI runs failed dumps on it).
 */
const tarCreate = (args: string) => `{ tar --create --one-file-system --numeric-owner --warning=no-file-changed ${args} || [ $? -eq 1 ]; }`;

/** Left in a dump's work dir by `saveRootBeside`: the root's archive is whole, or it could not be made. */
const rootSavedMarkers = (workDir: string) => [path.join(workDir, "root-saved"), path.join(workDir, "root-not-saved")].map(shellQuote) as [string, string];

/**
 * The shell command that saves the root of a sandboxed task (the tmpfs task-root.sh built: dirs and
 * mount points, /dev's nodes, the copied files; never what is mounted on it) beside the images. It runs
 * beside the dump's criu, as root, in its guard (criu-guard.ts): the root is read-only since the task
 * started, so when it is read does not matter, and criu need not wait for a `sh` and a `tar` before it
 * starts (~7 ms on a 2-core VM: bench/suspend-resume, twenty-first round). It leaves a marker in the
 * dump's work dir (`workDir`) that `awaitRootSaved` waits for: the task must not end before its root
 * has been read.
 */
export function saveRootBeside(initPid: number, imageDir: string, workDir: string): string {
  const [saved, failed] = rootSavedMarkers(workDir);
  const save = tarCreate(`--file ${shellQuote(path.join(imageDir, ROOT_ARCHIVE))} --directory /proc/${initPid}/root .`);
  return `{ ${save} && : > ${saved}; } || { : > ${failed}; exit 1; }`;
}

/**
 * For a dump's post-dump action script (dump-verdict.ts `first`), with the task still frozen: waits
 * until `saveRootBeside` has saved the root (as long as a verdict may take), and fails the dump, which
 * lets the task go on, if it could not.
 */
export function awaitRootSaved(workDir: string): string {
  const [saved, failed] = rootSavedMarkers(workDir);
  const failure = "echo 'stasis: saving the task root failed' >&2; exit 1";
  return `{ i=0; while [ ! -e ${saved} ]; do if [ -e ${failed} ] || [ "$i" -gt ${VERDICT_WAIT_S * 200} ]; then ${failure}; fi; i=$((i + 1)); sleep 0.005; done; }`;
}

/**
 * The shell command that saves a sandboxed task's /tmp and /dev/shm into SCRATCH_ARCHIVE: run by the
 * dump's post-dump action script (dump-verdict.ts), while criu holds the task frozen, so their content
 * is the one its memory knows (unlike the root, they change while it runs). /dev/shm is stored as
 * ./shm (not symlink targets: S).
 */
export function saveScratchCommand(initPid: number, imageDir: string): string {
  const dirs = SCRATCH_MOUNTS.map((m) => `.${m.mountPoint}`).join(" ");
  return tarCreate(`--file ${shellQuote(path.join(imageDir, SCRATCH_ARCHIVE))} --sparse --directory /proc/${initPid}/root --transform 's,^\\./dev/shm,./shm,S' ${dirs}`);
}

/** A restore's root, in shell (`$root`: the dir; `$archive`: ROOT_ARCHIVE): the tmpfs mounted over it, then filled and made read-only. */
export const RESTORE_ROOT_MOUNT = 'mount -t tmpfs -o mode=0755,size=16m,nosuid stasis-root "$root"';
export const RESTORE_ROOT_FILL = ['tar --extract --file "$archive" --directory "$root" --numeric-owner --preserve-permissions', 'mount -o remount,bind,ro,nosuid "$root"'];
/** A restore's /tmp and /dev/shm, in shell (`$scratch`: a dir holding one empty dir per SCRATCH_MOUNTS; `$size`): a tmpfs over each. */
export const RESTORE_SCRATCH_MOUNTS = SCRATCH_MOUNTS.map((m) => `mount -t tmpfs -o "mode=1777,nosuid,nodev,size=$size" stasis-tmp "$scratch/${m.dir}"`);
/** …then their content back (`$scratch_archive`: SCRATCH_ARCHIVE). */
export const RESTORE_SCRATCH_FILL = 'tar --extract --file "$scratch_archive" --directory "$scratch" --numeric-owner --preserve-permissions';

/**
 * Runs as the restore's criu command: in a mount namespace of its own, a fresh tmpfs over ROOT
 * (an empty dir of the runner's) gets the saved root back, read-only, and `criu restore --root ROOT`
 * makes it the restored namespace's root; with a SCRATCH_ARCHIVE, a tmpfs over each dir of SCRATCH
 * gets the task's /tmp and /dev/shm back, for criu to bind as external mounts. Arguments:
 * `ROOT ARCHIVE SCRATCH SCRATCH_ARCHIVE-or-empty SIZE criu args…`; fds pass through.
 */
const RESTORE_ROOT = [
  'root="$1"; archive="$2"; scratch="$3"; scratch_archive="$4"; size="$5"; shift 5',
  RESTORE_ROOT_MOUNT,
  ...RESTORE_ROOT_FILL,
  `if [ -n "$scratch_archive" ]; then ${[...RESTORE_SCRATCH_MOUNTS, RESTORE_SCRATCH_FILL].join("; ")}; fi`,
  'exec "$@"',
].join("\n");

/** A restore's scratch: SCRATCH_ARCHIVE's path ("" for a checkpoint without one), the dir its content goes to, and each mount's size. */
export interface RestoreScratch {
  archive: string;
  dir: string;
  size: string;
}

/** The restore's command line (before criu's own): see RESTORE_ROOT. */
export function restoreRootPrefix(root: string, imageDir: string, scratch: RestoreScratch): string[] {
  return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-euc", RESTORE_ROOT, "stasis-restore-root", root, path.join(imageDir, ROOT_ARCHIVE), scratch.dir, scratch.archive, scratch.size];
}
