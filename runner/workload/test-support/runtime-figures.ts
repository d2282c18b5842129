import { rm } from "node:fs/promises";
import path from "node:path";
import { expect } from "vitest";
import type { WorkloadRuntime } from "../types.ts";
import { createIpcClient } from "./ipc-client.ts";
import { GRAPH_SIZE, writeStatefulTask } from "./stateful-task.ts";

/** Start → ready, checkpoint and restore → first reply of a ~20 MB-heap task, medians of 3 (ms; image size in MiB). */
export async function measureRuntimeFigures(runtime: WorkloadRuntime): Promise<string> {
  const task = await writeStatefulTask();
  const [starts, dumps, restores, sizes]: number[][] = [[], [], [], []];
  try {
    for (let i = 0; i < 3; i++) {
      let t = performance.now();
      const proc = await runtime.start({ command: process.execPath, args: [task.script, task.logFile, String(GRAPH_SIZE)], cwd: task.dir, env: {} });
      expect(await createIpcClient(proc.ipc).next()).toMatchObject({ type: "ready" });
      starts.push(performance.now() - t);
      const imageDir = path.join(task.dir, `figures-${i}`);
      const { dumpMs, sizeBytes } = await runtime.checkpoint(proc, imageDir);
      dumps.push(dumpMs);
      sizes.push(sizeBytes);
      t = performance.now();
      const restored = await runtime.restore(imageDir, { cwd: task.dir });
      expect(await createIpcClient(restored.ipc).request({ cmd: "state" })).toMatchObject({ count: 1 });
      restores.push(performance.now() - t);
      await restored.kill();
    }
  } finally {
    await rm(task.dir, { recursive: true, force: true });
  }
  const median = (xs: number[]) => Math.round([...xs].sort((a, b) => a - b)[1]!);
  return `start→ready ${median(starts)} ms, checkpoint ${median(dumps)} ms, restore→first reply ${median(restores)} ms, image ${(median(sizes) / 1024 / 1024).toFixed(1)} MiB`;
}
