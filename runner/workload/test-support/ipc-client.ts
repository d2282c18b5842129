import type { Duplex } from "node:stream";

/** Newline-delimited JSON over a task's ipc socket, one awaited reply at a time. */
export function createIpcClient(ipc: Duplex) {
  const waiting: Array<(m: Record<string, unknown>) => void> = [];
  const queued: Array<Record<string, unknown>> = [];
  let buffered = "";
  ipc.setEncoding("utf8");
  ipc.on("data", (chunk: string) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const message = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
      buffered = buffered.slice(nl + 1);
      const next = waiting.shift();
      if (next) next(message);
      else queued.push(message);
    }
  });
  return {
    next(): Promise<Record<string, unknown>> {
      const message = queued.shift();
      return message ? Promise.resolve(message) : new Promise((resolve) => waiting.push(resolve));
    },
    async request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
      ipc.write(`${JSON.stringify(message)}\n`);
      return this.next();
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
