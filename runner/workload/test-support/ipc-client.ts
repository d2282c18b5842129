import type { Duplex } from "node:stream";

/** How long a reply may take before the test fails naming what it waited for (a hang otherwise shows only as the test's timeout). */
const REPLY_DEADLINE_MS = 60_000;

interface Waiter {
  resolve: (m: Record<string, unknown>) => void;
  reject: (err: Error) => void;
}

/** Newline-delimited JSON over a task's ipc socket, one awaited reply at a time. */
export function createIpcClient(ipc: Duplex) {
  const waiting: Waiter[] = [];
  const queued: Array<Record<string, unknown>> = [];
  let buffered = "";
  let ended: string | undefined;
  ipc.setEncoding("utf8");
  ipc.on("data", (chunk: string) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const message = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
      buffered = buffered.slice(nl + 1);
      const next = waiting.shift();
      if (next) next.resolve(message);
      else queued.push(message);
    }
  });
  const end = (why: string) => {
    ended ??= why;
    for (const w of waiting.splice(0)) w.reject(new Error(`the task's ipc ${why} before it replied`));
  };
  ipc.once("end", () => end("ended"));
  ipc.once("close", () => end("closed"));
  ipc.once("error", (err) => end(`failed (${err.message})`));

  const next = (awaited: string): Promise<Record<string, unknown>> => {
    const message = queued.shift();
    if (message) return Promise.resolve(message);
    if (ended) return Promise.reject(new Error(`the task's ipc ${ended} before it replied to ${awaited}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = waiting.indexOf(waiter);
        if (i >= 0) waiting.splice(i, 1);
        reject(new Error(`no reply from the task within ${REPLY_DEADLINE_MS / 1000} s to ${awaited}`));
      }, REPLY_DEADLINE_MS);
      const waiter: Waiter = {
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (err) => (clearTimeout(timer), reject(new Error(`${err.message} (awaiting ${awaited})`))),
      };
      waiting.push(waiter);
    });
  };
  return {
    next(): Promise<Record<string, unknown>> {
      return next("its next message");
    },
    request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
      ipc.write(`${JSON.stringify(message)}\n`);
      return next(JSON.stringify(message));
    },
    send(message: Record<string, unknown>): void {
      ipc.write(`${JSON.stringify(message)}\n`);
    },
  };
}

/** Collects a stream's text so a test can poll it. */
export function collect(stream: NodeJS.ReadableStream): { text: () => string } {
  let text = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => (text += chunk));
  return { text: () => text };
}
