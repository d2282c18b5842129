// Stasis's own image: pushed with one command, validated by skopeo and umoci, and run for real: the
// server and a runner each started from its unpacked rootfs under runc complete a run that freezes
// with CRIU and resumes.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli } from "./support/cli.ts";
import { createTestDatabase, type TestDatabase } from "./support/db.ts";
import { startRegistry, type TestRegistry } from "./support/registry.ts";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const run = promisify(execFile);
const ADMIN = "admin-" + randomBytes(12).toString("hex");
const RUNNER = "runner-" + randomBytes(12).toString("hex");

let registry: TestRegistry;
let database: TestDatabase;
let dir: string;
const hostMounts: string[] = [];
const containers: Array<{ id: string; child: ChildProcess; output: () => string }> = [];

beforeAll(async () => {
  registry = await startRegistry();
  database = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), "stasis-platform-image-"));
});

afterAll(async () => {
  for (const c of containers) {
    await run("runc", ["kill", c.id, "KILL"]).catch(() => {});
    await waitFor(`container ${c.id} to exit`, () => c.child.exitCode !== null || c.child.signalCode !== null, { timeoutMs: 20_000 }).catch(() => {});
    await run("runc", ["delete", "--force", c.id]).catch(() => {});
  }
  for (const d of hostMounts) await run("umount", ["-l", d]).catch(() => {});
  await database?.drop();
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let imageDigest = "";
const rootfs = () => join(dir, "bundle", "rootfs");
let tag = "";

it("builds Stasis's image and pushes it with one command (test/platform-image-build.test.ts builds it twice)", async () => {
  const started = Date.now();
  const result = await runCli(["admin", "build-image", "--push", `${registry.host}/stasis`, "--json"], { cwd: REPO_ROOT, env: {}, timeoutMs: 300_000 });
  expect(result.code, result.stderr).toBe(0);
  const pushed = JSON.parse(result.stdout) as { digest: string; ref: string; tag: string; criu: string; layers: Array<{ size: number }> };
  console.log(`platform image ${pushed.digest}: built+pushed in ${Date.now() - started} ms; layers ${pushed.layers.map((l) => l.size).join(" + ")} bytes`);
  expect(pushed.ref).toBe(`${registry.host}/stasis@${pushed.digest}`);
  expect(pushed.criu).toMatch(/^4\.([2-9]|\d\d)/);
  imageDigest = pushed.digest;
  tag = pushed.tag;

  // skopeo reads it from the registry, umoci (the stricter one) unpacks it into a runtime bundle.
  const inspected = JSON.parse((await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/stasis:${tag}`])).stdout) as { Digest: string; Labels: Record<string, string> };
  expect(inspected.Digest).toBe(imageDigest);
  expect(inspected.Labels["stasis.criu-version"]).toBe(pushed.criu);
  await run("skopeo", ["copy", "--src-tls-verify=false", `docker://${registry.host}/stasis@${imageDigest}`, `oci:${join(dir, "oci")}:stasis`]);
  await run("umoci", ["unpack", "--image", `${join(dir, "oci")}:stasis`, join(dir, "bundle")], { maxBuffer: 16 << 20 });
}, 600_000);

// Capability numbers (linux/capability.h) → names, to give the runner what this host's root holds (not more: runc refuses).
const CAP_NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"];
async function hostCapabilities(): Promise<string[]> {
  const status = await readFile("/proc/self/status", "utf8");
  const mask = BigInt("0x" + status.match(/^CapBnd:\s*([0-9a-f]+)/m)![1]);
  return CAP_NAMES.flatMap((name, bit) => ((mask >> BigInt(bit)) & 1n ? [`CAP_${name}`] : []));
}

/** A runc container from the unpacked image: host network and, for the runner, host PID and full privileges (as the DaemonSet). */
async function startContainer(name: string, args: string[], env: Record<string, string>, o: { privileged: boolean; binds: Array<[string, string]> }): Promise<(typeof containers)[number]> {
  const id = `stasis-${name}-${randomBytes(4).toString("hex")}`;
  const bundle = join(dir, id);
  await mkdir(bundle);
  const all = await hostCapabilities();
  const caps = o.privileged ? all : ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
  const spec = {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["/usr/local/bin/node", "/opt/stasis/app/cli/bin.mjs", ...args],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "UV_USE_IO_URING=0", "NODE_ENV=production", "HOME=/root", ...Object.entries(env).map(([k, v]) => `${k}=${v}`)],
      cwd: "/opt/stasis/app",
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      noNewPrivileges: !o.privileged,
    },
    root: { path: rootfs(), readonly: true },
    ...(o.privileged ? {} : { hostname: id }),
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      o.privileged ? { destination: "/dev", type: "bind", source: "/dev", options: ["rbind", "rw"] } : { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "mode=755"] },
      { destination: "/sys", type: "bind", source: "/sys", options: ["rbind", o.privileged ? "rw" : "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
      { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755"] },
      ...o.binds.map(([source, destination]) => ({ destination, type: "bind", source, options: ["rbind", "rw"] })),
    ],
    linux: {
      // Host network and (runner) host PID namespace, as the manifests' hostPID: the runner makes its own namespaces per task.
      namespaces: o.privileged ? [{ type: "mount" }] : [{ type: "mount" }, { type: "pid" }, { type: "ipc" }, { type: "uts" }],
      resources: { devices: [{ allow: o.privileged, access: "rwm" }] },
      cgroupsPath: `/stasis-test/${id}`,
    },
  };
  await writeFile(join(bundle, "config.json"), JSON.stringify(spec));
  const child = spawn("runc", ["run", "--bundle", bundle, id], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  const container = { id, child, output: () => output };
  containers.push(container);
  return container;
}

it("runs the server and a runner from the image under runc, and a run freezes and resumes", async () => {
  expect(imageDigest, "the image was built by the test above").not.toBe("");
  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  const server = await startContainer("server", ["server", "--host", "127.0.0.1", "--port", String(port)], {
    DATABASE_URL: database.url,
    STASIS_ADMIN_TOKEN: ADMIN,
    STASIS_RUNNER_TOKEN: RUNNER,
    STASIS_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
    STASIS_ALLOWED_REGISTRIES: registry.host,
  }, { privileged: false, binds: [] });
  await waitFor("the server in its container to answer", async () => (await fetch(`${apiUrl}/healthz`).catch(() => null))?.ok || server.child.exitCode !== null, { timeoutMs: 90_000 });
  expect(server.child.exitCode, server.output()).toBe(null);

  const checkpoints = join(dir, "checkpoints");
  const work = join(dir, "runner-work");
  const images = join(dir, "runner-images");
  // Each its own tmpfs, as a volume is on a node: CRIU refuses to dump a task whose mounts include a
  // bind of a mere subdirectory ("doesn't have a proper root mount"). The image cache (which the task
  // runs from, so CRIU copies that tmpfs into the checkpoint) is not the work dir, where CRIU writes
  // that very copy: tar would read a file as it grows ("file changed as we read it").
  for (const d of [checkpoints, work, images]) {
    await mkdir(d, { recursive: true });
    await run("mount", ["-t", "tmpfs", "-o", "mode=755", "tmpfs", d]);
    hostMounts.push(d);
  }
  const runner = await startContainer("runner", ["runner", "--server-url", apiUrl, "--checkpoint-dir", "/checkpoints", "--work-dir", "/var/lib/stasis/work", "--image-cache", "/var/lib/stasis/images", "--allowed-registries", registry.host, "--suspend-threshold", "1000"], { STASIS_RUNNER_TOKEN: RUNNER }, { privileged: true, binds: [[checkpoints, "/checkpoints"], [work, "/var/lib/stasis/work"], [images, "/var/lib/stasis/images"]] });

  const env = { STASIS_API_URL: apiUrl, STASIS_ADMIN_TOKEN: ADMIN };
  const created = await runCli(["projects", "create", "hello", "--json"], { cwd: dir, env });
  expect(created.code, created.stderr).toBe(0);
  const key = (JSON.parse(created.stdout) as { environments: Array<{ environment: string; apiKey: string }> }).environments.find((e) => e.environment === "production")!.apiKey;
  const deployed = await runCli(["deploy", "--project", join(REPO_ROOT, "examples/hello"), "--registry", `${registry.host}/hello`, "--json"], { cwd: dir, env: { STASIS_API_URL: apiUrl, STASIS_API_KEY: key }, timeoutMs: 180_000 });
  expect(deployed.code, deployed.stderr).toBe(0);

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${apiUrl}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
    expect(res.status, `${method} ${path}`).toBeLessThan(300);
    return (await res.json()) as T;
  };
  const { id } = await api<{ id: string }>("POST", "/api/v1/tasks/hello-later/trigger", { payload: { name: "container", seconds: 20 } });
  const statuses = new Set<string>();
  let checkpointSeen = false;
  let fatal: string | null = null;
  const finished = await waitFor(
    "the run to freeze and then complete",
    async () => {
      if (runner.child.exitCode !== null) return (fatal = `runner exited: ${runner.output()}`);
      const r = await api<{ status: string; output?: unknown; error?: unknown }>("GET", `/api/v1/runs/${id}`);
      statuses.add(r.status);
      if (r.status === "SUSPENDED" && (await readdir(checkpoints, { recursive: true })).length > 0) checkpointSeen = true;
      if (["FAILED", "CRASHED", "CANCELED", "SYSTEM_FAILURE"].includes(r.status)) return (fatal = `run ${r.status}: ${JSON.stringify(r.error)}\n${runner.output()}`);
      return r.status === "COMPLETED" ? r : null;
    },
    { timeoutMs: 120_000, intervalMs: 200 },
  );
  if (fatal || typeof finished === "string") throw new Error(fatal ?? String(finished));
  expect(finished.output).toEqual({ greeting: "Hello again, container!" });
  const logs = JSON.stringify(await api<unknown>("GET", `/api/v1/runs/${id}/logs`));
  expect(statuses.has("SUSPENDED"), `statuses seen: ${[...statuses].join(", ")}\nrun logs: ${logs}\n${runner.output()}`).toBe(true);
  expect(checkpointSeen).toBe(true);
}, 400_000);
