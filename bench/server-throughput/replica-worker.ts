// One more server replica for the bench: its own event loop (a worker thread), its own pool, the
// same database — as a second `stasis server` process would be. The main thread sends it loads.
import { parentPort, workerData } from "node:worker_threads";
import { connectDatabase, createKeyring, createServer, parseMasterKey } from "../../server/index.ts";
import { ADMIN_TOKEN, claimCompleteLoad, RUNNER_TOKEN, triggerLoad } from "./load.ts";

export type ReplicaTask =
  | { kind: "triggers"; apiKey: string; count: number; concurrency: number }
  | { kind: "claim"; runnerIds: string[]; slots: number; done: SharedArrayBuffer; expected: number }
  | { kind: "stop" };

const { databaseUrl, masterKeyHex } = workerData as { databaseUrl: string; masterKeyHex: string };
const db = connectDatabase(databaseUrl, { poolMax: 10 });
const server = await createServer({ db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, logger: false, keyring: createKeyring(parseMasterKey(masterKeyHex)) });
parentPort!.on("message", (task: ReplicaTask) => {
  const work =
    task.kind === "triggers" ? triggerLoad(server.app, task.apiKey, task.count, task.concurrency)
    : task.kind === "claim" ? claimCompleteLoad(server.app, task.runnerIds, task.slots, new Int32Array(task.done), task.expected)
    : server.close().then(() => db.destroy());
  work.then(
    () => parentPort!.postMessage({ ok: true }),
    (error: Error) => parentPort!.postMessage({ ok: false, error: error.stack ?? error.message }),
  );
});
parentPort!.postMessage({ ok: true, ready: true });
