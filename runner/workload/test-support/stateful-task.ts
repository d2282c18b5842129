import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

/**
 * A task process with state worth freezing: a random number, a closure counter, a several-MB
 * object graph and an O_APPEND log file it keeps writing. It speaks newline-delimited JSON on fd 3:
 * `{cmd:"state"}` → its state, `{cmd:"say",text}` → prints text on stdout and stderr,
 * `{cmd:"exit",code}` → exits with that code.
 */
const SCRIPT = String.raw`
import fs from "node:fs";
import net from "node:net";
const [logFile, graphSize] = process.argv.slice(2);
const random = Math.random();
const counter = (() => { let n = 0; return () => ++n; })();
const graph = Array.from({ length: Number(graphSize) }, (_, i) => ({ i, name: "node-" + i, next: null }));
for (let i = 1; i < graph.length; i++) graph[i - 1].next = graph[i];
let ticks = 0;
const log = fs.openSync(logFile, "a");
setInterval(() => fs.writeSync(log, "tick " + ++ticks + "\n"), 20);
const ipc = new net.Socket({ fd: 3, readable: true, writable: true });
const send = (m) => ipc.write(JSON.stringify(m) + "\n");
let buffered = "";
ipc.setEncoding("utf8");
ipc.on("data", (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const m = JSON.parse(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
    if (m.cmd === "state") {
      let sum = 0;
      for (let node = graph[0]; node; node = node.next) sum += node.i;
      send({ type: "state", random, count: counter(), graphSum: sum, ticks, pid: process.pid });
    } else if (m.cmd === "say") {
      process.stdout.write(m.text + "\n");
      process.stderr.write(m.text + "\n");
      send({ type: "said" });
    } else if (m.cmd === "exit") {
      process.exit(m.code);
    }
  }
});
send({ type: "ready", pid: process.pid });
`;

export async function writeStatefulTask(): Promise<{ dir: string; script: string; logFile: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-task-"));
  const script = path.join(dir, "task.mjs");
  await writeFile(script, SCRIPT);
  return { dir, script, logFile: path.join(dir, "task.log") };
}

/** 200k linked nodes: roughly 15–20 MB of heap. */
export const GRAPH_SIZE = 200_000;
export const graphSum = (size: number) => (size * (size - 1)) / 2;
