import { Worker } from "node:worker_threads";

/**
 * The sha256 of a file (or of several, concatenated), computed on a worker thread of this process: a
 * fetched checkpoint is hashed on the other core while this thread opens its seal, instead of in the
 * same pass (~8–10 ms of a 14 MB checkpoint's fetch on a 2-core VM: bench/suspend-resume, twenty-fifth
 * round). The thread reads the files itself; no fork. It starts at the first call and lives, idle and
 * unreferenced, for the next: it never keeps the process alive.
 */
export function sha256OffThread(files: string[]): Promise<string> {
  const thread = (hasher ??= startHasher());
  const id = nextId++;
  return new Promise<string>((resolve, reject) => {
    thread.pending.set(id, { resolve, reject });
    if (thread.pending.size === 1) thread.worker.ref();
    thread.worker.postMessage({ id, files });
  });
}

interface Hasher {
  worker: Worker;
  pending: Map<number, { resolve: (hex: string) => void; reject: (error: Error) => void }>;
}

let hasher: Hasher | null = null;
let nextId = 1;

/** Plain JavaScript run as the worker (eval: no file of its own to find next to a bundle). */
const HASHER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { openSync, readSync, closeSync } = require("node:fs");
const buffer = Buffer.allocUnsafe(1 << 20);
parentPort.on("message", ({ id, files }) => {
  try {
    const hash = createHash("sha256");
    for (const file of files) {
      const fd = openSync(file, "r");
      try {
        for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
      } finally {
        closeSync(fd);
      }
    }
    parentPort.postMessage({ id, hex: hash.digest("hex") });
  } catch (error) {
    parentPort.postMessage({ id, error: error && error.message ? error.message : String(error) });
  }
});
`;

function startHasher(): Hasher {
  const worker = new Worker(HASHER_SOURCE, { eval: true, name: "stasis-checkpoint-digest" });
  const thread: Hasher = { worker, pending: new Map() };
  worker.unref();
  worker.on("message", ({ id, hex, error }: { id: number; hex?: string; error?: string }) => {
    const waiter = thread.pending.get(id);
    thread.pending.delete(id);
    if (thread.pending.size === 0) worker.unref();
    if (!waiter) return;
    if (hex !== undefined) waiter.resolve(hex);
    else waiter.reject(new Error(`cannot hash the checkpoint: ${error}`));
  });
  // A thread that died (out of memory, say) fails what it held; the next call starts another.
  const fail = (error: Error) => {
    if (hasher === thread) hasher = null;
    for (const waiter of thread.pending.values()) waiter.reject(error);
    thread.pending.clear();
  };
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`the checkpoint digest thread exited (${code})`)));
  return thread;
}
