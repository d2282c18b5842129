// The ledger: a tiny HTTP server the harness starts; every task POSTs each side effect to it
// ({runId, attempt, step, value}). It stamps each record with the harness's clock on arrival.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface LedgerRecord {
  runId: string;
  /** The attempt that started the task process (a restored process keeps the ctx it was started with). */
  attempt: number;
  step: string;
  value: unknown;
  /** The recording process's lineage: kept across a restore, new in a fresh process. */
  process?: string;
  at: number;
}

export interface Ledger {
  url: string;
  records: LedgerRecord[];
  onRecord(listener: (record: LedgerRecord) => void): void;
  close(): Promise<void>;
}

export async function startLedger(): Promise<Ledger> {
  const records: LedgerRecord[] = [];
  const listeners: Array<(record: LedgerRecord) => void> = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      try {
        const parsed = JSON.parse(body) as Omit<LedgerRecord, "at">;
        if (typeof parsed.runId !== "string" || typeof parsed.step !== "string" || typeof parsed.attempt !== "number") throw new Error("bad record");
        const record: LedgerRecord = { runId: parsed.runId, attempt: parsed.attempt, step: parsed.step, value: parsed.value ?? null, at: Date.now() };
        if (typeof parsed.process === "string") record.process = parsed.process;
        records.push(record);
        for (const l of listeners) l(record);
        res.writeHead(204).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    records,
    onRecord: (l) => listeners.push(l),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
