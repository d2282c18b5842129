import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import type { WorkloadRuntime } from "../types.ts";
import { createIpcClient } from "./ipc-client.ts";

/** Starts a task limited to 256 MB that then allocates 600 MB, and expects it killed as MemoryLimitExceeded (not a crash). */
export async function expectKilledAtMemoryLimit(runtime: WorkloadRuntime): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-oom-"));
  const script = path.join(dir, "hog.mjs");
  await writeFile(script, [
    'import net from "node:net";',
    "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
    'ipc.write(JSON.stringify({ type: "ready" }) + "\\n");',
    "const keep = [];",
    "ipc.on('data', () => { for (let i = 0; i < 60; i++) keep.push(Buffer.alloc(10 * 1024 * 1024, 1)); ipc.write(JSON.stringify({ type: 'survived' }) + '\\n'); });",
  ].join("\n"));
  try {
    const proc = await runtime.start({ command: process.execPath, args: [script], cwd: dir, env: {}, machine: { cpu: 1, memory: 256 } });
    const ipc = createIpcClient(proc.ipc);
    expect(await ipc.next()).toEqual({ type: "ready" });
    ipc.send({ cmd: "allocate" });
    expect(await proc.exited).toEqual({ code: null, signal: "SIGKILL", reason: { name: "MemoryLimitExceeded", message: "exceeded memory limit of 256 MB" } });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
