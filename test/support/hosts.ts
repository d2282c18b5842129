// Runners as separate "hosts" on one machine: each `stasis runner` runs in its own network namespace
// (a veth pair to a test bridge, so it reaches the server and the registry only over that network)
// with its own work dir; hosts share no checkpoint directory. The image cache sits at the one path
// every host uses, as on identical machines: a process-mode checkpoint records the task's mount
// table, so a per-host bind mount there made CRIU look for the first host's bind source on restore
// (`mnt-v2: Failed to open_tree …/host-1/image-cache`). Tests empty it between hosts instead, so
// the next host pulls the image from the registry itself.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { CLI } from "./stack.ts";
import { waitFor } from "./wait-for.ts";

const run = promisify(execFile);
const ip = (...args: string[]) => run("ip", args);

/** A bridge in the machine's network namespace that the hosts' veth pairs plug into. */
export interface TestNetwork {
  /** The machine's address on the bridge: the server and the registry listen there. */
  gateway: string;
  /** The address the n-th host gets (n ≥ 1). */
  hostAddress(n: number): string;
  bridge: string;
  remove(): Promise<void>;
}

/**
 * Creates `stzbr<random>` with 10.231.X.1/24 (X random, checked unused) and a MAC address of its own. Needs root.
 *
 * The MAC is set, not left to the kernel: a bridge without one takes the lowest MAC of its ports and
 * changes it when ports come and go. A host that left (its namespace gone, its veth with it) then
 * took the gateway's MAC along while the other hosts still had it in their ARP caches: their frames
 * to it were flooded, not delivered, until the entry went stale and was probed again — 20 to 50 s
 * without the server. A host restoring a drained run lost its 6 s leases that way (attempt 1 LOST
 * "lease expired", restored again as attempt 2) while it sent a heartbeat every second.
 */
export async function createTestNetwork(): Promise<TestNetwork> {
  const tag = randomBytes(3).toString("hex");
  const bridge = `stzbr${tag}`;
  const routes = (await run("ip", ["-4", "route"])).stdout;
  let subnet = 0;
  for (let tries = 0; tries < 50 && (!subnet || routes.includes(`10.231.${subnet}.`)); tries++) subnet = 1 + Math.floor(Math.random() * 250);
  await ip("link", "add", bridge, "type", "bridge");
  try {
    // Locally administered, unicast (02:…), random: no two test bridges share one.
    await ip("link", "set", bridge, "address", `02:${[...randomBytes(5)].map((b) => b.toString(16).padStart(2, "0")).join(":")}`);
    await ip("addr", "add", `10.231.${subnet}.1/24`, "dev", bridge);
    await ip("link", "set", bridge, "up");
  } catch (error) {
    await ip("link", "del", bridge).catch(() => {});
    throw error;
  }
  return {
    gateway: `10.231.${subnet}.1`,
    hostAddress: (n) => `10.231.${subnet}.${1 + n}`,
    bridge,
    remove: async () => void (await ip("link", "del", bridge).catch(() => {})),
  };
}

export interface HostOptions {
  network: TestNetwork;
  /** 1, 2, …: picks the host's address and names its veth pair. */
  n: number;
  name: string;
  /** The host's own disk: its work dir lives under it. */
  dir: string;
  /** The path of every host's image cache (a checkpoint names the bundle by path). */
  cachePath: string;
  serverUrl: string;
  runnerToken: string;
  args: string[];
  env: Record<string, string>;
}

export interface TestHost {
  runnerId: string;
  child: ChildProcess;
  log(): string;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<void>;
  kill9(): Promise<void>;
}

/**
 * Starts a runner as a separate host: `unshare --net`, a veth pair from the bridge into the new
 * network namespace (the host's only way out), then `stasis runner` with the host's own work dir.
 */
export async function startHost(o: HostOptions): Promise<TestHost> {
  const work = join(o.dir, "work");
  await mkdir(work, { recursive: true });
  await mkdir(o.cachePath, { recursive: true });
  const ready = join(o.dir, "network-ready");
  const script = [
    "set -e",
    'while [ ! -e "$NETWORK_READY" ]; do sleep 0.02; done',
    'exec "$NODE" "$@"',
  ].join("\n");
  const args = [CLI, "runner", "--server-url", o.serverUrl, "--name", o.name, "--work-dir", work, "--image-cache", o.cachePath, "--drain-grace", "2000", "--json", ...o.args];
  const child = spawn("unshare", ["--net", "--", "sh", "-c", script, "host", ...args], {
    env: { ...process.env, ...o.env, STASIS_RUNNER_TOKEN: o.runnerToken, STASIS_LOG_LEVEL: "info", NETWORK_READY: ready, NODE: process.execPath },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => (stdout += chunk));
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  try {
    // The namespace exists once unshare has exec'd the shell; then plug the host into the bridge.
    const pid = child.pid!;
    await waitFor(`host ${o.name}'s namespaces`, async () => {
      if (child.exitCode !== null) throw new Error(`host ${o.name} exited early: ${stderr}`);
      const [mine, theirs] = await Promise.all([run("readlink", ["/proc/self/ns/net"]), run("readlink", [`/proc/${pid}/ns/net`]).catch(() => null)]);
      return theirs && theirs.stdout !== mine.stdout ? true : null;
    });
    const outside = `stzh${o.n}${o.network.bridge.slice(5)}`;
    const inside = `stzn${o.n}${o.network.bridge.slice(5)}`;
    await ip("link", "add", outside, "type", "veth", "peer", "name", inside);
    await ip("link", "set", outside, "master", o.network.bridge, "up");
    await ip("link", "set", inside, "netns", String(pid));
    const nsIp = (...a: string[]) => run("nsenter", ["-t", String(pid), "-n", "ip", ...a]);
    await nsIp("link", "set", "lo", "up");
    await nsIp("link", "set", inside, "name", "eth0");
    await nsIp("addr", "add", `${o.network.hostAddress(o.n)}/24`, "dev", "eth0");
    await nsIp("link", "set", "eth0", "up");
    await nsIp("route", "add", "default", "via", o.network.gateway);
    await writeFile(ready, "");
    const line = await waitFor(`host ${o.name}'s runner to register`, () => {
      if (child.exitCode !== null) throw new Error(`host ${o.name}'s runner exited early: ${stderr}`);
      return stdout.split("\n").find((l) => l.startsWith("{"));
    }, { timeoutMs: 90_000 });
    return { runnerId: (JSON.parse(line) as { runnerId: string }).runnerId, child, log: () => stderr, stop: () => kill("SIGTERM"), kill9: () => kill("SIGKILL") };
  } catch (error) {
    await kill("SIGKILL");
    throw error;
  }
}
