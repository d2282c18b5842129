import { writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * The process under test: builds `mb` MB of state (half a linked object graph, half a filled
 * Buffer), then says `ready` with its RSS. With fd 3 (the runtime's ipc) it answers `ping` with
 * `pong`; without it (raw CRIU runs) it writes `ready` and heartbeats to the file in argv[3].
 */
const SCRIPT = String.raw`
import fs from "node:fs";
import net from "node:net";
const mb = Number(process.argv[2]);
const statusFile = process.argv[3];
const half = (mb * 1024 * 1024) / 2;
const graph = [];
for (let i = 0; i < half / 64; i++) graph.push({ i, next: graph[i - 1] ?? null });
const blob = Buffer.alloc(half);
for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE((i * 2654435761) >>> 0, i);
const rss = process.memoryUsage().rss;
if (statusFile) {
  const fd = fs.openSync(statusFile, "a");
  fs.writeSync(fd, JSON.stringify({ type: "ready", rss }) + "\n");
  setInterval(() => fs.writeSync(fd, "beat " + graph.length + " " + blob[8] + "\n"), 10);
} else {
  const ipc = new net.Socket({ fd: 3, readable: true, writable: true });
  ipc.write(JSON.stringify({ type: "ready", rss }) + "\n");
  ipc.on("data", () => ipc.write(JSON.stringify({ type: "pong", n: graph.length }) + "\n"));
  setInterval(() => {}, 1000);
}
`;

export async function writeBenchTask(dir: string): Promise<string> {
  const file = path.join(dir, "bench-task.mjs");
  await writeFile(file, SCRIPT);
  return file;
}
