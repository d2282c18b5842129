import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { CheckpointStore } from "../../runner/checkpoint-store/index.ts";
import type { WorkloadRuntime } from "../../runner/workload/index.ts";
import type { Duplex } from "node:stream";

export interface RuntimeSample {
  coldStartMs: number;
  rssBytes: number;
  checkpointMs: number;
  dumpMs: number;
  imageBytes: number;
  storePutMs: number;
  storedBytes: number;
  storeGetMs: number;
  restoreMs: number;
  firstReplyMs: number;
}

/** One start → checkpoint → store put → store get → restore → first ipc reply through the real parts. */
export async function runtimeSample(runtime: WorkloadRuntime, store: CheckpointStore, script: string, mb: number, dir: string): Promise<RuntimeSample> {
  const images = path.join(dir, `rt-${mb}.img`);
  const fetched = path.join(dir, `rt-${mb}.fetched`);
  await rm(fetched, { recursive: true, force: true });

  let t = performance.now();
  const proc = await runtime.start({ command: process.execPath, args: [script, String(mb)], cwd: dir, env: {} });
  const ready = await nextMessage(proc.ipc);
  const coldStartMs = performance.now() - t;

  t = performance.now();
  const { dumpMs, sizeBytes: imageBytes } = await runtime.checkpoint(proc, images);
  const checkpointMs = performance.now() - t;

  t = performance.now();
  const seal = { key: randomBytes(32) };
  const stored = await store.put(`bench/${mb}mb-${Date.now()}`, images, seal);
  const storePutMs = performance.now() - t;
  t = performance.now();
  await mkdir(fetched, { recursive: true });
  await store.get(stored.location, fetched, { key: seal.key, sha256: stored.sha256 });
  const storeGetMs = performance.now() - t;

  t = performance.now();
  const restored = await runtime.restore(fetched, { cwd: dir });
  const restoreMs = performance.now() - t;
  restored.ipc.write("ping\n");
  await nextMessage(restored.ipc);
  const firstReplyMs = performance.now() - t;

  await restored.kill();
  await store.delete(stored.location);
  await rm(images, { recursive: true, force: true });
  await rm(fetched, { recursive: true, force: true });
  return { coldStartMs, rssBytes: Number(ready.rss), checkpointMs, dumpMs, imageBytes, storePutMs, storedBytes: stored.sizeBytes, storeGetMs, restoreMs, firstReplyMs };
}

/** The next newline-delimited JSON message a task process writes on its IPC channel. */
export function nextMessage(ipc: Duplex): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const nl = text.indexOf("\n");
      if (nl < 0) return;
      ipc.off("data", onData);
      resolve(JSON.parse(text.slice(0, nl)));
    };
    ipc.on("data", onData);
  });
}
