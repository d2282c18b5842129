// Extra server replicas for the bench, each a worker thread (replica-worker.ts) with its own event
// loop and server on the same database; `run` hands one a load and resolves when it is done.
import { Worker } from "node:worker_threads";
import type { ReplicaTask } from "./replica-worker.ts";

export interface Replica {
  run(task: ReplicaTask): Promise<void>;
  stop(): Promise<void>;
}

export async function startReplica(databaseUrl: string, masterKeyHex: string): Promise<Replica> {
  // A worker thread does not inherit tsx's loader: it registers it, then imports the TypeScript entry.
  const entry = new URL("./replica-worker.ts", import.meta.url).href;
  const boot = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: { databaseUrl, masterKeyHex } });
  let pending: { resolve: () => void; reject: (error: Error) => void } | null = null;
  const answered = (message: { ok: boolean; error?: string }) => {
    const waiting = pending;
    pending = null;
    if (message.ok) waiting?.resolve();
    else waiting?.reject(new Error(`replica: ${message.error}`));
  };
  worker.on("message", answered);
  worker.on("error", (error) => answered({ ok: false, error: error.stack ?? error.message }));
  const next = () => new Promise<void>((resolve, reject) => (pending = { resolve, reject }));
  await next(); // ready
  const run = (task: ReplicaTask) => {
    const done = next();
    worker.postMessage(task);
    return done;
  };
  return {
    run,
    async stop() {
      await run({ kind: "stop" });
      await worker.terminate();
    },
  };
}
