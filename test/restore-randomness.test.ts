// Two restores of one checkpoint must not mint the same "random" values. The task process is a real
// bundle (the SDK's worker runtime) under the process runtime with CRIU, and under runc in its
// image's own root; this test plays its runner.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildToLayout, bundleProject, openImageStore } from "../builder/index.ts";
import { hardwareRandomFiles, hardwareRandomFlags } from "../runner/hardware-random.ts";
import { createProcessRuntime } from "../runner/workload/index.ts";
import type { TaskProcess, WorkloadRuntime } from "../runner/workload/index.ts";
import { createRuncRuntime, detectRunc } from "../runner/workload/runc-runtime.ts";
import type { RunnerToTask, TaskToRunner } from "../schemas/index.ts";
import { writeTaskProject } from "./support/task-project.ts";

const processRuntime = await createProcessRuntime();
const runc = await detectRunc();
let dir: string;
let entry: string;
const live: TaskProcess[] = [];

const TASK = `
import { randomBytes, randomUUID } from "node:crypto";
import { task, wait } from "stasis/sdk";

export const randoms = task({
  id: "randoms",
  run: async () => {
    // Fill Node's UUID cache and V8's Math.random cache before the checkpoint.
    const before = { uuid: randomUUID(), random: Math.random() };
    await wait.for({ seconds: 30 });
    return {
      before,
      uuids: [randomUUID(), randomUUID(), globalThis.crypto.randomUUID()],
      randoms: [Math.random(), Math.random(), Math.random()],
      bytes: randomBytes(16).toString("hex"),
      webcrypto: Array.from(crypto.getRandomValues(new Uint32Array(4))).join(","),
    };
  },
});
`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "stasis-randomness-"));
  const project = await writeTaskProject(path.join(dir, "project"), "randomness", TASK);
  entry = (await bundleProject({ projectDir: project, outDir: path.join(dir, "app") })).entry;
}, 60_000);
afterAll(async () => {
  await Promise.all(live.map((p) => p.kill().catch(() => {})));
  processRuntime.close?.();
  await rm(dir, { recursive: true, force: true });
});

/** The runner's side of a task's fd 3: newline-delimited JSON. */
function channel(proc: TaskProcess) {
  const queued: TaskToRunner[] = [];
  const waiting: Array<(m: TaskToRunner) => void> = [];
  let buffered = "";
  proc.ipc.setEncoding("utf8");
  proc.ipc.on("data", (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const message = JSON.parse(buffered.slice(0, nl)) as TaskToRunner;
      buffered = buffered.slice(nl + 1);
      if (message.type === "log") continue;
      const next = waiting.shift();
      if (next) next(message);
      else queued.push(message);
    }
  });
  return {
    next: (): Promise<TaskToRunner> => (queued.length ? Promise.resolve(queued.shift()!) : new Promise((resolve) => waiting.push(resolve))),
    send: (message: RunnerToTask) => proc.ipc.write(`${JSON.stringify(message)}\n`),
  };
}

type Output = { before: { uuid: string; random: number }; uuids: string[]; randoms: number[]; bytes: string; webcrypto: string };

/** Where the task runs: the host (process runtime) or an image's own root (runc). */
interface Place {
  runtime: WorkloadRuntime;
  rootfs?: string;
}

/** Restores the checkpoint, hands the wait its result, and returns what the task computed after it. */
async function restoreAndFinish({ runtime, rootfs }: Place, imageDir: string, callId: number): Promise<Output> {
  const proc = await runtime.restore(imageDir, { cwd: path.dirname(entry), rootfs });
  live.push(proc);
  const ch = channel(proc);
  ch.send({ type: "wait-result", callId, result: { kind: "duration" } });
  const done = await ch.next();
  if (done.type !== "completed") throw new Error(`the restored task sent ${JSON.stringify(done)}`);
  await proc.kill();
  return done.output as Output;
}

/** Starts the task, checkpoints it in its first wait, and restores that one checkpoint twice. */
async function twoRestores(nodeFlags: string[], name: string, place: Place = { runtime: processRuntime }, files: string[] = []): Promise<[Output, Output]> {
  const { runtime, rootfs } = place;
  const proc = await runtime.start({
    command: process.execPath,
    args: ["--no-wasm-memory-protection-keys", ...nodeFlags, entry],
    cwd: path.dirname(entry),
    env: { PATH: process.env.PATH ?? "", STASIS_WORKER_MODE: "run", UV_USE_IO_URING: "0" },
    rootfs,
    files,
  });
  live.push(proc);
  const ch = channel(proc);
  expect(await ch.next()).toEqual({ type: "ready" });
  ch.send({ type: "execute", ctx: { runId: "run_random", taskId: "randoms", attempt: 1, environment: "test", project: "randomness", version: "20260101.1", tags: [] }, payload: null });
  const call = await ch.next();
  if (call.type !== "call" || call.call.method !== "wait") throw new Error(`expected a wait call, got ${JSON.stringify(call)}`);
  ch.send({ type: "prepare-checkpoint" });
  expect(await ch.next()).toEqual({ type: "checkpoint-ready" });
  const imageDir = path.join(dir, name);
  await runtime.checkpoint(proc, imageDir);
  const first = await restoreAndFinish(place, imageDir, call.callId);
  const second = await restoreAndFinish(place, imageDir, call.callId);
  // The same process state before the wait.
  expect(second.before).toEqual(first.before);
  return [first, second];
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe.skipIf(!processRuntime.checkpoints.available)("after a restore", () => {
  it.skipIf(hardwareRandomFlags().length === 0)("with the runner's flags, randomUUID(), Math.random(), randomBytes() and getRandomValues() differ between two restores of one checkpoint", async () => {
    const [first, second] = await twoRestores(hardwareRandomFlags(), "hardware");
    for (const uuid of [...first.uuids, ...second.uuids]) expect(uuid).toMatch(UUID_V4);
    for (const uuid of second.uuids) expect(first.uuids).not.toContain(uuid);
    for (const random of second.randoms) expect(first.randoms).not.toContain(random);
    expect(second.bytes).not.toBe(first.bytes);
    expect(second.webcrypto).not.toBe(first.webcrypto);
  }, 60_000);

  it("without them (no RDRAND), randomUUID() and Math.random() still differ: the worker draws them from the kernel", async () => {
    const [first, second] = await twoRestores([], "kernel");
    for (const uuid of second.uuids) expect(first.uuids).not.toContain(uuid);
    for (const random of second.randoms) expect(first.randoms).not.toContain(random);
    for (const random of [...first.randoms, ...second.randoms]) expect(random >= 0 && random < 1).toBe(true);
  }, 60_000);
});

describe.skipIf(!runc.ok || !processRuntime.checkpoints.available || hardwareRandomFlags().length === 0)("after a runc restore", () => {
  let image: { rootfs: string; dir: string } | undefined;
  afterAll(() => image && rm(image.dir, { recursive: true, force: true }));

  it("with the runner's flags and files, randomBytes() and getRandomValues() differ between two restores of one checkpoint (the OpenSSL config is bound into the container)", async () => {
    // A real image with the runtime layer (the host's Node), as `deploy --with-runtime` makes.
    const imageDir = await mkdtemp(path.join(tmpdir(), "stasis-randomness-image-"));
    const built = await buildToLayout({ projectDir: path.resolve(import.meta.dirname, "fixtures/basic"), outDir: path.join(imageDir, "oci"), withRuntime: true });
    image = { rootfs: (await openImageStore(built.ref).fetch(built.ref, path.join(imageDir, "cache"))).rootfsDir, dir: imageDir };
    const runtime = await createRuncRuntime({ rootfs: image.rootfs, checkpoints: true, workDir: path.join(dir, "runc") });
    const [first, second] = await twoRestores(hardwareRandomFlags(), "runc-hardware", { runtime, rootfs: image.rootfs }, hardwareRandomFiles());
    expect(second.bytes).not.toBe(first.bytes);
    expect(second.webcrypto).not.toBe(first.webcrypto);
    for (const uuid of second.uuids) expect(first.uuids).not.toContain(uuid);
  }, 180_000);
});
