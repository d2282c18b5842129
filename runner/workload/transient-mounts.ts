import { readdir, readFile, readlink } from "node:fs/promises";
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

/** Paths the processes of the task's namespace hold: cwd, root, open files, mapped files. Each process's links and files are read at once. */
async function pathsInUse(initPid: number): Promise<string[]> {
  const paths = new Set<string>();
  const readOne = async (pid: number): Promise<number[]> => {
    const link = (name: string) => readlink(`/proc/${pid}/${name}`).catch(() => "");
    const [fds, maps, tasks] = await Promise.all([
      readdir(`/proc/${pid}/fd`).catch(() => [] as string[]),
      readFile(`/proc/${pid}/maps`, "utf8").catch(() => ""),
      readdir(`/proc/${pid}/task`).catch(() => [] as string[]),
    ]);
    const [links, childLists] = await Promise.all([
      Promise.all([link("cwd"), link("root"), ...fds.map((fd) => link(`fd/${fd}`))]),
      Promise.all(tasks.map((task) => readFile(`/proc/${pid}/task/${task}/children`, "utf8").catch(() => ""))),
    ]);
    for (const p of links) paths.add(p);
    for (const line of maps.split("\n")) {
      const at = line.indexOf("/");
      if (at >= 0) paths.add(line.slice(at));
    }
    return childLists.flatMap((list) => list.trim().split(/\s+/).filter(Boolean).map(Number));
  };
  for (let level = [initPid]; level.length > 0; ) level = (await Promise.all(level.map(readOne))).flat();
  paths.delete("");
  return [...paths].filter((p) => p.startsWith("/") && p !== "/");
}

/**
 * The command line criu's dump runs behind (null: nothing to detach): it detaches those mounts inside
 * the task's mount namespace (lazily: nothing there uses them; the namespace's mounts are private, so
 * the host keeps its own), then execs criu. Part of the dump's guarded command, so no fork of the
 * runner (which copies its page tables: 4–14 ms) is spent on it. At dump time, not at start: the
 * short-lived `umount` joins the task's PID namespace (its /proc is that namespace's) and would
 * otherwise take PIDs before the task's own.
 */
export async function detachTransientMountsPrefix(initPid: number): Promise<string[] | null> {
  const targets = mountsToDetach(parseMountinfo(await readFile(`/proc/${initPid}/mountinfo`, "utf8")), await pathsInUse(initPid));
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

/** `criu dump` arguments declaring the shared host mounts present in the task's namespace. */
export async function externalMountDumpArgs(initPid: number): Promise<string[]> {
  const present = new Set(parseMountinfo(await readFile(`/proc/${initPid}/mountinfo`, "utf8")).map((entry) => entry.mountPoint));
  return Object.entries(SHARED_HOST_MOUNTS).flatMap(([mountPoint, key]) => (present.has(mountPoint) ? ["--external", `mnt[${mountPoint}]:${key}`] : []));
}

/** `criu restore` arguments binding those mounts to this host's (unused keys are ignored by CRIU). */
export function externalMountRestoreArgs(): string[] {
  return Object.entries(SHARED_HOST_MOUNTS).flatMap(([mountPoint, key]) => ["--external", `mnt[${key}]:${mountPoint}`]);
}
