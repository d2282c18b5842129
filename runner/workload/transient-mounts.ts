import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { shellQuote } from "./shell-quote.ts";

/**
 * Mounts the task's namespace copied from the host that will be gone by restore time: runc
 * containers' (`/run/runc/…`) and CRIU's own restore scratch (`/tmp/.criu…`). CRIU refuses to
 * rebuild a mount namespace whose mount points are missing, so they are detached before a dump.
 */
const TRANSIENT = [/^\/run\/runc\//, /^\/tmp\/\.criu/];

/**
 * Mounts CRIU cannot dump at all, which other software puts on the host and a task's namespace
 * copies at start: namespace files bind-mounted to keep a namespace alive (`ip netns add` makes
 * /run/netns/<name>; container engines do the same under /run/docker/netns, /run/netns/cni-…).
 * CRIU fails with "doesn't have a proper root mount". No task uses them.
 */
const UNDUMPABLE_FSTYPES = new Set(["nsfs"]);
/**
 * The dirs holding those namespace files are bind mounts of themselves (`ip netns` makes
 * /run/netns one, sometimes several stacked), each with its own copy of the nsfs mounts: only the
 * topmost copy is reachable by path, so the dirs themselves are detached, with all below them.
 */
const NAMESPACE_FILE_DIRS = /^\/(var\/)?run\/(netns|docker\/netns)(\/|$)/;
/** FUSE filesystems (lxcfs over /proc files, sshfs, gvfs …): CRIU cannot dump a FUSE mount either. */
const isFuse = (fsType: string) => fsType === "fuse" || fsType.startsWith("fuse.");
/**
 * Overlays of the host: a container engine's container roots (Podman, Docker: `…/overlay/<id>/merged`),
 * removed with their dir when the container goes. CRIU restores every mount the namespace had, and
 * fails on one whose mount point is gone ("Can't stat mountpoint"; found by the full suite beside a
 * Podman test). Those the task does not use are detached; a host whose own root is an overlay keeps it.
 */
const unusedOverlay = (entry: MountEntry, used: (mountPoint: string) => boolean) => entry.fsType === "overlay" && entry.mountPoint !== "/" && !used(entry.mountPoint);

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  /** The mount source (`stasis-hidden`, `stasis-sandbox` for a sandbox's own tmpfs mounts). */
  source?: string;
}

/** Mounts named `stasis-*` are Stasis's own (a sandbox's tmpfs mounts): never detached. */
const SANDBOX_SOURCE = /^stasis-/;

/** The entries of a /proc/<pid>/mountinfo, in order (parents before children). */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (fields.length < 5 || separator < 0) continue;
    entries.push({ mountPoint: unescapeMountPath(fields[4]), fsType: fields[separator + 1] ?? "", source: fields[separator + 2] ?? "" });
  }
  return entries;
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * tmpfs mounts of the host (another program's scratch or checkpoint dirs): CRIU tars the content of
 * every tmpfs into the checkpoint, failing the dump when a file there comes or goes meanwhile ("Can't
 * dump tmpfs content"). Those the task does not use are detached; the system's own (/dev, /sys,
 * /proc) stay, and /dev/shm is declared external (below).
 */
const SYSTEM_MOUNT = /^\/(dev|sys|proc)(\/|$)/;

/** Which mounts to detach before a dump, deepest first. `inUse`: paths the task's processes hold. */
export function mountsToDetach(entries: MountEntry[], inUse: string[] = []): string[] {
  const used = (mountPoint: string) => inUse.some((p) => p === mountPoint || p.startsWith(`${mountPoint}/`));
  const unusedTmpfs = (entry: MountEntry) => entry.fsType === "tmpfs" && !SYSTEM_MOUNT.test(entry.mountPoint) && !used(entry.mountPoint) && !SANDBOX_SOURCE.test(entry.source ?? "");
  return entries
    .filter((entry) => UNDUMPABLE_FSTYPES.has(entry.fsType) || isFuse(entry.fsType) || NAMESPACE_FILE_DIRS.test(entry.mountPoint) || TRANSIENT.some((re) => re.test(entry.mountPoint)) || unusedTmpfs(entry) || unusedOverlay(entry, used))
    .map((entry) => entry.mountPoint)
    .reverse();
}

/**
 * Paths the processes of the task's namespace hold: cwd, root, open files, mapped files. Read
 * synchronously, as everything from /proc on a dump's way: it is memory, and these ~100 reads, each
 * a hop through the thread pool, took 8–11 ms of a 20 MB suspend (bench/suspend-resume).
 */
function pathsInUse(initPid: number): string[] {
  const paths = new Set<string>();
  const quietly = <T>(read: () => T, otherwise: T): T => {
    try {
      return read();
    } catch {
      return otherwise; // the process or fd went meanwhile
    }
  };
  const readOne = (pid: number): number[] => {
    const link = (name: string) => quietly(() => readlinkSync(`/proc/${pid}/${name}`), "");
    for (const name of ["cwd", "root", ...quietly(() => readdirSync(`/proc/${pid}/fd`), [] as string[]).map((fd) => `fd/${fd}`)]) paths.add(link(name));
    for (const line of quietly(() => readFileSync(`/proc/${pid}/maps`, "utf8"), "").split("\n")) {
      const at = line.indexOf("/");
      if (at >= 0) paths.add(line.slice(at));
    }
    const tasks = quietly(() => readdirSync(`/proc/${pid}/task`), [] as string[]);
    return tasks.flatMap((task) => quietly(() => readFileSync(`/proc/${pid}/task/${task}/children`, "utf8"), "").trim().split(/\s+/).filter(Boolean).map(Number));
  };
  for (let level = [initPid]; level.length > 0; ) level = level.flatMap(readOne);
  paths.delete("");
  return [...paths].filter((p) => p.startsWith("/") && p !== "/");
}

/** The mounts of a process's mount namespace (its /proc/<pid>/mountinfo, read synchronously). */
export function readMountinfo(pid: number): MountEntry[] {
  return parseMountinfo(readFileSync(`/proc/${pid}/mountinfo`, "utf8"));
}

/**
 * The command line criu's dump runs behind (null: nothing to detach): it detaches those mounts inside
 * the task's mount namespace (lazily: nothing there uses them; the namespace's mounts are private, so
 * the host keeps its own), then execs criu. Part of the dump's guarded command, so no fork of the
 * runner (which copies its page tables: 4–14 ms) is spent on it. At dump time, not at start: the
 * short-lived `umount` joins the task's PID namespace (its /proc is that namespace's) and would
 * otherwise take PIDs before the task's own.
 */
export function detachTransientMountsPrefix(initPid: number, mounts: MountEntry[]): string[] | null {
  const targets = mountsToDetach(mounts, pathsInUse(initPid));
  if (targets.length === 0) return null;
  // One umount for all: it goes on past a target that is gone already (a copy under a stacked mount detached with
  // it) and fails at the end, which is ignored. CRIU reports anything left.
  const detach = `nsenter -t ${initPid} -m -p -- umount -l -- ${targets.map(shellQuote).join(" ")} 2>/dev/null`;
  return ["/bin/sh", "-c", `${detach}\nexec "$@"`, "stasis-detach-mounts"];
}

/**
 * Host mounts a task shares rather than owns: CRIU would tar their whole content into the checkpoint
 * (the host's /dev/shm holds other programs' shared memory — PostgreSQL's segments come and go
 * mid-dump and fail it with "Can't dump tmpfs content" — and must not be copied into checkpoints
 * anyway). They are declared external: not dumped, and bound again to the host's on restore.
 */
const SHARED_HOST_MOUNTS: Record<string, string> = { "/dev/shm": "stasis-host-dev-shm" };

/** `criu dump` arguments declaring the shared host mounts present in the task's namespace (its `mounts`). */
export function externalMountDumpArgs(mounts: MountEntry[]): string[] {
  const present = new Set(mounts.map((entry) => entry.mountPoint));
  return Object.entries(SHARED_HOST_MOUNTS).flatMap(([mountPoint, key]) => (present.has(mountPoint) ? ["--external", `mnt[${mountPoint}]:${key}`] : []));
}

/** `criu restore` arguments binding those mounts to this host's (unused keys are ignored by CRIU). */
export function externalMountRestoreArgs(): string[] {
  return Object.entries(SHARED_HOST_MOUNTS).flatMap(([mountPoint, key]) => ["--external", `mnt[${key}]:${mountPoint}`]);
}
