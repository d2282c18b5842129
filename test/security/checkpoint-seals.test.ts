// Issue 10 item 5 against the real stack (server, in-process runner, real CRIU): a checkpoint holds the
// task's memory — here an environment variable the task read and keeps in a variable across the wait —
// yet nothing on disk shows it; a checkpoint with a flipped byte, or swapped for another run's, is
// refused before anything of it is restored, and the run is retried from the start.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, open, readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { createReadStream } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpenStream } from "../../runner/checkpoint-store/sealed-stream.ts";
import type { RunView } from "../../schemas/index.ts";
import { createKeyring, parseMasterKey } from "../../server/index.ts";
import { unwrapCheckpointKey, unwrapDataKey } from "../../server/secrets/crypto.ts";
import { runLogs, sendEvent, trigger, waitForFinal, waitForSuspended } from "../support/e2e-waits.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";

const FIXTURE = resolve(import.meta.dirname, "../fixtures/envvars");
const MASTER = parseMasterKey(randomBytes(32).toString("base64"));
const SECRET = `held-in-memory-${randomBytes(12).toString("hex")}`;
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ project: "envvars", runners: 1, keyring: createKeyring(MASTER) });
  if (!stack.local.checkpointsMode.available) throw new Error(`this test needs CRIU: ${stack.local.checkpointsMode.reason}`);
  await stack.deploy(FIXTURE, { environment: "development" });
  await stack.api("POST", "/api/v1/envvars", { variables: { GREETING_SECRET: SECRET } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

interface RecordedCheckpoint {
  file: string;
  location: string;
  sha256: string;
  wrappedKey: Buffer;
  projectId: string;
}

async function recordedCheckpoint(runId: string): Promise<RecordedCheckpoint> {
  const row = await stack.local.db("runs as r").join("environments as e", "e.id", "r.environment_id").where("r.id", runId).first("r.checkpoint_location", "r.checkpoint_sha256", "r.checkpoint_key", "e.project_id");
  expect(row.checkpoint_location).toMatch(/^dir:.*\.tar\.zst\.sealed$/);
  return { file: join(stack.local.dirs.checkpoints, row.checkpoint_location.slice("dir:".length)), location: row.checkpoint_location, sha256: row.checkpoint_sha256, wrappedKey: row.checkpoint_key, projectId: row.project_id };
}

/** Every regular file under `dir` that contains `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const bytes = await readFile(file).catch(() => null);
    if (bytes?.includes(needle)) hits.push(file);
  }
  return hits;
}

/** What the sealed checkpoint holds, opened with the key the server keeps: the tar of CRIU's images. */
async function openedCheckpoint(recorded: RecordedCheckpoint): Promise<Buffer> {
  const row = await stack.local.db("project_data_keys").where({ project_id: recorded.projectId }).first("wrapped_key");
  const dataKey = unwrapDataKey(MASTER, recorded.projectId, row.wrapped_key);
  const runId = recorded.location.slice("dir:".length).split("/")[0]!;
  const key = unwrapCheckpointKey(dataKey, { projectId: recorded.projectId, runId, location: recorded.location }, recorded.wrappedKey);
  const zstd = spawn("zstd", ["-d", "-q", "-c"], { stdio: ["pipe", "pipe", "inherit"] });
  const chunks: Buffer[] = [];
  zstd.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise((done) => zstd.once("close", done));
  await pipeline(createReadStream(recorded.file), createOpenStream(key), zstd.stdin);
  await closed;
  return Buffer.concat(chunks);
}

async function flipByte(file: string): Promise<void> {
  const handle = await open(file, "r+");
  try {
    const at = Math.floor((await handle.stat()).size / 3);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] ^= 0x80;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

/**
 * The resuming attempt is refused with CheckpointIntegrityError before anything is restored; the run's
 * next attempt runs the task from its start, reaches the wait (already completed, same wait key) and finishes.
 */
async function expectRefusedThenRecovered(runId: string): Promise<void> {
  const run: RunView = await waitForFinal(stack, runId);
  const failed = run.attemptDetails?.filter((a) => a.status === "FAILED") ?? [];
  expect(failed).toHaveLength(1);
  expect(failed[0]!.error?.name).toBe("CheckpointIntegrityError");
  expect(failed[0]!.error?.message).toMatch(/checkpoint dir:\S+ has sha256 [0-9a-f]{64}, which does not match the sha256 [0-9a-f]{64} the server recorded at suspend/);
  expect(run.output).toEqual({ length: SECRET.length, sameAfterRestore: true });
  const logs = (await runLogs(stack, runId)).map((l) => l.message);
  const refused = logs.findIndex((m) => m.startsWith("[stasis] CheckpointIntegrityError: checkpoint dir:"));
  const starts = logs.flatMap((m, i) => (m.startsWith("secret is ") ? [i] : []));
  const afterWait = logs.flatMap((m, i) => (m.startsWith("after restore") ? [i] : []));
  // Started twice (the second time from the top, after the refusal); the code after the wait ran once, in the second start.
  expect(starts).toHaveLength(2);
  expect(refused).toBeGreaterThan(starts[0]!);
  expect(refused).toBeLessThan(starts[1]!);
  expect(afterWait).toHaveLength(1);
  expect(afterWait[0]).toBeGreaterThan(starts[1]!);
}

describe("checkpoints at rest", () => {
  it("hold the task's secret only sealed: neither the store nor the runner's work dir shows it, and the run resumes", async () => {
    const { id } = await trigger(stack, "show-env", { waitFor: "seal-go" });
    await waitForSuspended(stack, id);
    const recorded = await recordedCheckpoint(id);
    expect(recorded.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The secret is in the frozen memory: opened with its key, the checkpoint has it …
    expect((await openedCheckpoint(recorded)).includes(SECRET)).toBe(true);
    // … but on disk it is nowhere: not in the store, not in the runner's work dir (no plaintext local copy).
    expect(await filesContaining(stack.local.dirs.checkpoints, SECRET)).toEqual([]);
    expect(await filesContaining(stack.local.dirs.work, SECRET)).toEqual([]);
    // The database holds only the wrapped key.
    const dump = JSON.stringify(await stack.local.db("runs").where({ id }).first());
    expect(dump).not.toContain(SECRET);

    await sendEvent(stack, "seal-go", null);
    const run = await waitForFinal(stack, id);
    expect(run.output).toEqual({ length: SECRET.length, sameAfterRestore: true });
  });

  it("refuses a checkpoint with a flipped byte: the attempt fails with CheckpointIntegrityError and the run starts over", async () => {
    const { id } = await trigger(stack, "show-env", { waitFor: "flip-go" });
    await waitForSuspended(stack, id);
    await flipByte((await recordedCheckpoint(id)).file);
    await sendEvent(stack, "flip-go", null);
    await expectRefusedThenRecovered(id);
  });

  it("refuses a checkpoint swapped for another run's", async () => {
    const victim = await trigger(stack, "show-env", { waitFor: "swap-victim" });
    await waitForSuspended(stack, victim.id);
    const other = await trigger(stack, "show-env", { waitFor: "swap-other" });
    await waitForSuspended(stack, other.id);
    const victimCheckpoint = await recordedCheckpoint(victim.id);
    const otherCheckpoint = await recordedCheckpoint(other.id);
    await copyFile(otherCheckpoint.file, victimCheckpoint.file);
    await sendEvent(stack, "swap-victim", null);
    await expectRefusedThenRecovered(victim.id);
    // The other run is untouched by this and resumes from its own checkpoint.
    await sendEvent(stack, "swap-other", null);
    expect((await waitForFinal(stack, other.id)).output).toEqual({ length: SECRET.length, sameAfterRestore: true });
  });
});
