// Records one side effect in the chaos harness's ledger. Plain node:http without keep-alive, so no
// socket is open across a checkpoint. Retries until the ledger has it: the ledger is never faulted,
// so a failure here is the harness's, not the platform's.
import { request } from "node:http";

/**
 * Which process lineage recorded a step: made when this module loads, so a process restored from a
 * checkpoint keeps its tag and a fresh process (a new attempt from the start) gets a new one.
 */
const PROCESS_TAG = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export interface LedgerPayload {
  ledger: string;
}

function postOnce(url: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 204 ? resolve() : reject(new Error(`ledger answered ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** `value` distinguishes two executions of one step (a token made after the step ran). */
export async function record(ledger: string, runId: string, attempt: number, step: string, value: unknown = null): Promise<void> {
  const body = JSON.stringify({ runId, attempt, step, value, process: PROCESS_TAG });
  for (let i = 0; ; i++) {
    try {
      return await postOnce(ledger, body);
    } catch (error) {
      if (i >= 20) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A token unlikely to repeat even when one checkpoint is restored twice (the clock moves on). */
export function token(): string {
  return `${Date.now().toString(36)}-${process.hrtime.bigint().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
