import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { TaskProcess, WorkloadRuntime } from "../types.ts";
import { createIpcClient } from "./ipc-client.ts";
import { GRAPH_SIZE, writeStatefulTask } from "./stateful-task.ts";

export interface TaskFixture {
  dir: string;
  script: string;
  logFile: string;
  scratch: string;
  live: TaskProcess[];
  start(runtime: WorkloadRuntime, logFile?: string): Promise<{ proc: TaskProcess; ipc: ReturnType<typeof createIpcClient> }>;
  track<T extends TaskProcess>(proc: T): T;
  /** Closes `runtime` after the file's tests (its criu guard waiting for the next dump or restore goes with it). */
  own<R extends WorkloadRuntime>(runtime: R): R;
}

/** The stateful task script, a scratch dir for image dirs, and cleanup of every task started and runtime owned. */
export function useTaskFixture(): TaskFixture {
  const runtimes: WorkloadRuntime[] = [];
  const fixture: TaskFixture = {
    dir: "",
    script: "",
    logFile: "",
    scratch: "",
    live: [] as TaskProcess[],
    /** Starts the stateful task and waits for its `ready`. */
    async start(runtime: WorkloadRuntime, logFile = fixture.logFile) {
      const proc = await runtime.start({ command: process.execPath, args: [fixture.script, logFile, String(GRAPH_SIZE)], cwd: fixture.dir, env: { PATH: process.env.PATH ?? "" } });
      fixture.live.push(proc);
      const ipc = createIpcClient(proc.ipc);
      expect(await ipc.next()).toMatchObject({ type: "ready" });
      return { proc, ipc };
    },
    track<T extends TaskProcess>(proc: T): T {
      fixture.live.push(proc);
      return proc;
    },
    own<R extends WorkloadRuntime>(runtime: R): R {
      runtimes.push(runtime);
      return runtime;
    },
  };
  beforeAll(async () => {
    Object.assign(fixture, await writeStatefulTask());
    fixture.scratch = await mkdtemp(path.join(tmpdir(), "stasis-checkpoints-"));
  });
  afterAll(async () => {
    await Promise.all(fixture.live.map((p) => p.kill()));
    for (const runtime of runtimes) runtime.close?.();
    await rm(fixture.dir, { recursive: true, force: true });
    await rm(fixture.scratch, { recursive: true, force: true });
  });
  return fixture;
}
