import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { pollFor } from "../poll.ts";
import { unmountUnder } from "./podman-service.ts";

const run = promisify(execFile);
/** Debian's docker.io (20.10); a `docker` earlier on PATH may be another version. */
export const DOCKERD = "/usr/sbin/dockerd";
const CONTAINERD = "/usr/bin/containerd";

export interface DockerService {
  socketPath: string;
  dir: string;
  /** Removes every container, stops dockerd and its containerd, unmounts and removes their storage. */
  stop(): Promise<void>;
}

/** Whether Debian's dockerd and containerd are installed (scripts/setup-system.sh installs docker.io). */
export async function dockerAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await run(DOCKERD, ["--version"], { timeout: 10_000 });
    await run(CONTAINERD, ["--version"], { timeout: 10_000 });
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `dockerd/containerd not found: ${(err as Error).message} (run scripts/setup-system.sh)` };
  }
}

/**
 * A dockerd of the test's own, with a containerd of its own, everything under one temp dir: no
 * iptables rules, no bridge (containers use the host network, as the container workload asks), so
 * the host's firewall is never touched (a default dockerd sets the FORWARD policy to DROP, which
 * would cut the veth "hosts" of other tests). `experimental` turns on Docker's checkpoint API.
 */
export async function startDockerService(options: { experimental?: boolean } = {}): Promise<DockerService> {
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-docker-"));
  const containerdSocket = path.join(dir, "containerd.sock");
  await writeFile(path.join(dir, "containerd.toml"), [
    "version = 2",
    `root = "${path.join(dir, "containerd", "root")}"`,
    `state = "${path.join(dir, "containerd", "state")}"`,
    // Docker needs none of Kubernetes' plugin; without it containerd looks for no CNI config.
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    "[grpc]",
    `  address = "${containerdSocket}"`,
    "[ttrpc]",
    `  address = "${containerdSocket}.ttrpc"`,
    "[debug]",
    '  address = ""',
    "[metrics]",
    '  address = ""',
    // containerd drops content nothing refers to (a dump's own tar, say) only now and then; never, here, so a test always meets what a host's may still hold.
    '[plugins."io.containerd.gc.v1.scheduler"]',
    '  startup_delay = "24h"',
    "  pause_threshold = 0.000001",
    "  mutation_threshold = 1000000",
    "",
  ].join("\n"));
  // Its own config file: /etc/docker/daemon.json is not read, and the trust key stays in `dir` (not /etc/docker/key.json).
  await writeFile(path.join(dir, "daemon.json"), JSON.stringify({ "deprecated-key-path": path.join(dir, "key.json") }));
  const children: ChildProcess[] = [];
  let said = "";
  const spawnLogged = (command: string, args: string[]) => {
    const child = spawn(command, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.on("data", (chunk: Buffer) => (said = (said + chunk.toString()).slice(-3000)));
    children.push(child);
    return child;
  };
  const socketPath = path.join(dir, "docker.sock");
  const cgroupParent = `/${path.basename(dir)}`;
  const docker = new Docker({ socketPath });
  const stop = async () => {
    const containers = await docker.listContainers({ all: true }).catch(() => []);
    await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
    // dockerd first (it tells containerd its containers are gone), then containerd.
    for (const child of children.reverse()) await end(child);
    // A shim whose container outlived the removal above would stay: it names our containerd's address.
    for (const pid of await processesNaming(containerdSocket)) process.kill(pid, "SIGKILL");
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
    for (const controller of await readdir("/sys/fs/cgroup").catch(() => [])) await rmdir(path.join("/sys/fs/cgroup", controller, cgroupParent)).catch(() => {});
  };
  try {
    spawnLogged(CONTAINERD, ["--config", path.join(dir, "containerd.toml")]);
    await pollFor(() => (existsSync(containerdSocket) ? true : undefined), 30_000, `containerd (${said})`);
    spawnLogged(DOCKERD, [
      "--config-file", path.join(dir, "daemon.json"),
      "--data-root", path.join(dir, "data"),
      "--exec-root", path.join(dir, "exec"),
      "--pidfile", path.join(dir, "docker.pid"),
      "-H", `unix://${socketPath}`,
      "--containerd", containerdSocket,
      "--iptables=false", "--ip6tables=false", "--bridge=none",
      // Its containers' cgroups under a parent of its own, removed with it (not a shared `docker` one left behind).
      "--cgroup-parent", cgroupParent,
      ...(options.experimental ? ["--experimental"] : []),
    ]);
    await pollFor(async () => (existsSync(socketPath) && (await docker.ping().then(() => true, () => false)) ? true : undefined), 30_000, `dockerd (${said})`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { socketPath, dir, stop };
}

/** SIGTERM, up to 10 s, then SIGKILL; resolves once the child has exited. */
async function end(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Processes whose command line contains `text`. */
async function processesNaming(text: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const found: number[] = [];
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (pid !== process.pid && cmdline.split("\0").includes(text)) found.push(pid);
  }
  return found;
}
