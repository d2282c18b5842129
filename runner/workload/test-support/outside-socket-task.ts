import { writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { createIpcClient } from "./ipc-client.ts";
import type { TaskFixture } from "./task-fixture.ts";
import type { WorkloadRuntime } from "../types.ts";

/**
 * A task connected over a unix socket to a server outside its tree — something CRIU refuses to dump —
 * and answering `alive` on its ipc; its first ipc message is `connected`. `close` stops the server.
 */
export async function startOutsideSocketTask(f: TaskFixture, runtime: WorkloadRuntime) {
  const socketPath = path.join(f.dir, "outside.sock");
  const server = net.createServer(() => {});
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const script = path.join(f.dir, "outside.mjs");
  await writeFile(script, [
    'import net from "node:net";',
    "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
    `net.connect(${JSON.stringify(socketPath)}, () => ipc.write(JSON.stringify({ type: "connected" }) + "\\n"));`,
    'ipc.on("data", () => ipc.write(JSON.stringify({ type: "alive" }) + "\\n"));',
  ].join("\n"));
  const close = () => void server.close();
  try {
    const proc = f.track(await runtime.start({ command: process.execPath, args: [script], cwd: f.dir, env: {} }));
    return { proc, ipc: createIpcClient(proc.ipc), close };
  } catch (error) {
    close();
    throw error;
  }
}
