import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";

const CGROUP_ROOT = "/sys/fs/cgroup";
const MB = 1024 * 1024;

/**
 * A cgroup of our own above the container's (`/stasis/<id>`; runc gets `/stasis/<id>/task`). The
 * memory limit sits on it, not on runc's leaf: runc removes the leaf the moment the container is
 * gone, and with it its OOM counter. cgroup v1 counts an OOM kill only in the victim's own cgroup
 * (runc's leaf), so on v1 ours tells "hit the limit" by its peak usage instead; v2 counts
 * OOM kills up the tree.
 */
export interface TaskCgroup {
  /** What runc gets as `linux.cgroupsPath`. */
  readonly runcPath: string;
  /** Whether the task's memory reached the limit (v1) or the kernel OOM-killed in it (v2). */
  memoryLimitHit(): Promise<boolean>;
  /** Removes our parent cgroup dirs (after the container is gone). */
  remove(): Promise<void>;
}

function isV1(): boolean {
  return existsSync(path.join(CGROUP_ROOT, "memory", "memory.limit_in_bytes"));
}

/** Ids of the task cgroups on this host (live or left behind). */
export async function listTaskCgroups(): Promise<string[]> {
  const dir = isV1() ? path.join(CGROUP_ROOT, "memory", "stasis") : path.join(CGROUP_ROOT, "stasis");
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

export async function createTaskCgroup(id: string, memoryMb: number | undefined): Promise<TaskCgroup> {
  const rel = path.join("stasis", id);
  const v1 = isV1();
  const memoryDir = v1 ? path.join(CGROUP_ROOT, "memory", rel) : path.join(CGROUP_ROOT, rel);
  await mkdir(memoryDir, { recursive: true });
  if (memoryMb !== undefined) {
    const bytes = String(Math.round(memoryMb * MB));
    if (v1) {
      await writeFile(path.join(memoryDir, "memory.limit_in_bytes"), bytes);
      // Without this a machine with swap would page the task out instead of stopping it.
      const memsw = path.join(memoryDir, "memory.memsw.limit_in_bytes");
      if (existsSync(memsw)) await writeFile(memsw, bytes).catch(() => {});
    } else {
      await writeFile(path.join(memoryDir, "memory.max"), bytes);
      await writeFile(path.join(memoryDir, "memory.swap.max"), "0").catch(() => {});
    }
  }
  return {
    runcPath: `/${rel}/task`,
    async memoryLimitHit() {
      if (memoryMb === undefined) return false;
      const read = (file: string) => readFile(path.join(memoryDir, file), "utf8").catch(() => "");
      if (!v1) return Number(/^oom_kill (\d+)$/m.exec(await read("memory.events"))?.[1] ?? 0) > 0;
      // The charge that fails may be counted in the leaf or in memsw; the peak reaching the limit is not.
      const [peak, limit] = await Promise.all(["memory.max_usage_in_bytes", "memory.limit_in_bytes"].map(async (f) => Number((await read(f)).trim() || 0)));
      return limit > 0 && peak >= limit;
    },
    async remove() {
      const dirs = v1 ? (await readdir(CGROUP_ROOT).catch(() => [] as string[])).map((c) => path.join(CGROUP_ROOT, c, rel)) : [memoryDir];
      // runc creates (and on delete removes) `task` below ours in every controller; a leftover one
      // (a crashed runc) is removed here too, once empty.
      await Promise.all(dirs.map(async (dir) => {
        await rmdir(path.join(dir, "task")).catch(() => {});
        await rmdir(dir).catch(() => {});
      }));
    },
  };
}
