import { lstat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { WorkloadError } from "./errors.ts";

/** cpu in cores, memory in MB (as in a task's `machine`). */
export const MachineLimits = z.object({ cpu: z.number().positive(), memory: z.number().int().positive() });
export type MachineLimits = z.infer<typeof MachineLimits>;

/** The process inside the container: what a checkpoint must remember to rebuild its bundle. */
export const ContainerProcess = z.object({
  args: z.array(z.string()).min(1),
  env: z.array(z.string()),
  cwd: z.string(),
  /** Host dirs bind-mounted read-write at the same path (a cwd outside the image). */
  binds: z.array(z.string()),
  /** Host files bind-mounted read-only at the same path (files named in the args, e.g. an OpenSSL config). */
  files: z.array(z.string()).default([]),
  /** Who the task runs as: its environment's own user when the runner sandboxes tasks (absent: root, as before). */
  user: z.object({ uid: z.number().int().nonnegative(), gid: z.number().int().nonnegative() }).optional(),
});
export type ContainerProcess = z.infer<typeof ContainerProcess>;

const IMAGE_PATH = ["/usr/local/bin", "/usr/bin", "/bin"];
const CPU_PERIOD = 100_000;

/** `path` as seen inside a container whose root is `rootfs`, or null when it lies outside. */
export function insideRootfs(rootfs: string, hostPath: string): string | null {
  const rel = path.relative(rootfs, hostPath);
  if (rel === "") return "/";
  if (rel.startsWith("..") || path.isAbsolute(rel)) return null;
  return `/${rel}`;
}

async function existsIn(rootfs: string, file: string): Promise<boolean> {
  return (await lstat(path.join(rootfs, file)).catch(() => null)) !== null;
}

/**
 * Maps a start request written for the host (the host's `node`, paths into the unpacked image) onto
 * the image: paths under the rootfs become container paths, a command the image lacks is looked up
 * by name on the image's PATH (so the host's `/usr/bin/node` becomes the image's own `node`), and a
 * cwd outside the image is bind-mounted at the same path.
 */
export async function containerProcess(rootfs: string, opts: { command: string; args: string[]; cwd: string; env: Record<string, string>; files?: string[]; sandbox?: { uid: number; gid: number; shared: string[] } }): Promise<ContainerProcess> {
  const map = (p: string) => (path.isAbsolute(p) ? (insideRootfs(rootfs, p) ?? p) : p);
  let command = map(opts.command);
  if (!path.isAbsolute(command) || !(await existsIn(rootfs, command))) {
    const name = path.basename(command);
    const found: string[] = [];
    for (const dir of IMAGE_PATH) if (await existsIn(rootfs, path.join(dir, name))) found.push(path.join(dir, name));
    if (found.length === 0) throw new WorkloadError("START_FAILED", `cannot start ${opts.command}: neither it nor "${name}" on ${IMAGE_PATH.join(":")} is in the image at ${rootfs}`);
    command = found[0]!;
  }
  const cwd = path.resolve(opts.cwd);
  // A sandboxed task sees the image and, of the host, only the dirs the operator shares with tasks.
  const binds = [...(insideRootfs(rootfs, cwd) === null ? [cwd] : []), ...(opts.sandbox?.shared ?? []).map((d) => path.resolve(d))];
  const env = Object.entries({ ...opts.env, UV_USE_IO_URING: "0" }).map(([k, v]) => `${k}=${v}`);
  // Files inside the image are there already; the others are bound at the path the args name.
  const files = (opts.files ?? []).map((f) => path.resolve(f)).filter((f) => insideRootfs(rootfs, f) === null);
  const user = opts.sandbox ? { uid: opts.sandbox.uid, gid: opts.sandbox.gid } : undefined;
  return { args: [command, ...opts.args.map(map)], env, cwd: map(cwd), binds, files, ...(user ? { user } : {}) };
}

export interface BundleSpecOptions {
  rootfs: string;
  process: ContainerProcess;
  cgroupsPath: string;
  machine?: MachineLimits;
  /** CRIU config file runc hands to CRIU (org.criu.config): per-dump `external`, per-restore `inherit-fd`. */
  criuConfig: string;
}

/**
 * An OCI runtime spec: the image's rootfs read-only (one unpacked copy is shared by every run of a
 * version), a tmpfs /tmp, pid/ipc/uts/mount namespaces, and the host network (the task only talks to
 * its runner, over fd 3). The memory limit lives on the parent cgroup (see runc-cgroup.ts).
 */
export function bundleSpec(o: BundleSpecOptions): Record<string, unknown> {
  // Root keeps runc's usual few; a task's own user gets none (it needs none, and holds no other).
  const user = o.process.user ?? { uid: 0, gid: 0 };
  const caps = user.uid === 0 ? ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] : [];
  const mounts: Array<Record<string, unknown>> = [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
    ...o.process.binds.map((dir) => ({ destination: dir, type: "bind", source: dir, options: ["rbind", "rw"] })),
    ...o.process.files.map((file) => ({ destination: file, type: "bind", source: file, options: ["bind", "ro"] })),
  ];
  const resources: Record<string, unknown> = { devices: [{ allow: false, access: "rwm" }] };
  if (o.machine) resources.cpu = { quota: Math.max(1000, Math.round(o.machine.cpu * CPU_PERIOD)), period: CPU_PERIOD };
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid },
      args: o.process.args,
      env: o.process.env,
      cwd: o.process.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: o.rootfs, readonly: true },
    hostname: "stasis-task",
    mounts,
    annotations: { "org.criu.config": o.criuConfig },
    linux: {
      resources,
      cgroupsPath: o.cgroupsPath,
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      maskedPaths: ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}
