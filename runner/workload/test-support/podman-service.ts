import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { pollFor } from "../poll.ts";

const run = promisify(execFile);

export interface PodmanService {
  socketPath: string;
  dir: string;
  /** Removes every container, stops the service, unmounts and removes its storage. */
  stop(): Promise<void>;
}

/** Whether a `podman` binary is installed (scripts/setup-system.sh installs it). */
export async function podmanAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await run("podman", ["--version"], { timeout: 10_000 });
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `podman not found: ${(err as Error).message} (run scripts/setup-system.sh)` };
  }
}

/**
 * A rootful Podman API service of the test's own, with storage, run state and config under one temp
 * dir: runc with cgroupfs, events in a file, explicit ulimits (rootful Podman here cannot raise them
 * itself) and the host network by default — what deploy/README.md asks of a host's service.
 */
export async function startPodmanService(): Promise<PodmanService> {
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-podman-"));
  const conf = path.join(dir, "containers.conf");
  await writeFile(conf, [
    "[containers]",
    'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
    'netns = "host"',
    "[engine]",
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = "${path.join(dir, "events.log")}"`,
    "",
  ].join("\n"));
  const socketPath = path.join(dir, "podman.sock");
  const args = ["--root", path.join(dir, "storage"), "--runroot", path.join(dir, "run"), "--tmpdir", path.join(dir, "tmp"), "system", "service", "--time=0", `unix://${socketPath}`];
  // Its own dir as cwd: conmon writes an `oom` file into its cwd when a container is OOM-killed.
  const child: ChildProcess = spawn("podman", args, { cwd: dir, env: { ...process.env, CONTAINERS_CONF: conf }, stdio: ["ignore", "ignore", "pipe"] });
  let said = "";
  child.stderr!.on("data", (chunk: Buffer) => (said = (said + chunk.toString()).slice(-2000)));
  const docker = new Docker({ socketPath });
  await pollFor(async () => (existsSync(socketPath) && (await docker.ping().then(() => true, () => false)) ? true : undefined), 30_000, `podman service (${said})`);
  return {
    socketPath,
    dir,
    async stop() {
      const containers = await docker.listContainers({ all: true }).catch(() => []);
      await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await Promise.race([new Promise((resolve) => child.once("exit", resolve)), new Promise((resolve) => setTimeout(resolve, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      await unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Unmounts whatever the service left mounted below `dir` (overlay layers, shm), deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").map((line) => line.split(" ")[4] ?? "").filter((m) => m.startsWith(`${dir}/`));
  for (const mount of mounts.sort((a, b) => b.length - a.length)) await run("umount", ["-l", mount]).catch(() => {});
}
