import { createRedactor, type LogLevel } from "../schemas/index.ts";

export interface LogEntry {
  ts: string;
  level: LogLevel;
  message: string;
  data?: Record<string, unknown>;
}

const MAX_BATCH = 500;
const FLUSH_EVERY_MS = 150;

/**
 * Ships one run's log lines to the server in order: batches are sent one at a time, so a line
 * logged before a suspend is stored before the lines logged after the restore. `send` delivers one
 * batch (retrying as every report does); a batch it gives up on is dropped. Every value of the run's
 * environment variables (`secrets`, ≥ 6 characters) is replaced by `[redacted:NAME]` before a line
 * leaves the runner; `mapStacks` rewrites the stack frames a line holds (stack-mapper.ts), in order.
 */
export function createLogShipper(send: (lines: LogEntry[]) => Promise<unknown>, onError: (error: Error) => void, secrets: Record<string, string> = {}, mapStacks?: (text: string) => Promise<string>) {
  let redact = createRedactor(secrets);
  const added: Array<[string, string]> = [];
  let queue: LogEntry[] = [];
  let sending: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;

  function schedule(): void {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      void flush();
    }, FLUSH_EVERY_MS);
  }

  function flush(): Promise<void> {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    while (queue.length > 0) {
      const lines = queue.slice(0, MAX_BATCH).map((line) => ({
        ...line,
        message: redact.text(line.message).slice(0, 64 * 1024),
        ...(line.data ? { data: redact.deep(line.data) } : {}),
      }));
      queue = queue.slice(MAX_BATCH);
      sending = sending.then(async () => {
        if (mapStacks) for (const line of lines) line.message = await mapStacks(line.message);
        await send(lines).then(() => undefined, (error: Error) => onError(error));
      });
    }
    return sending;
  }

  let closed = false;
  return {
    push(entry: LogEntry): void {
      if (closed) return;
      queue.push(entry);
      if (queue.length >= MAX_BATCH) void flush();
      else schedule();
    },
    flush,
    /** Another value to redact from now on (a connection token the runner handed the task); lines still queued get it too. */
    addSecret(name: string, value: string): void {
      added.push([name, value]);
      redact = createRedactor([...Object.entries(secrets), ...added]);
    },
    /** A run's result with the connection tokens handed to the task replaced, as in its log lines (environment variables are left as they are). */
    redactHandedTokens<T>(value: T): T {
      return added.length === 0 ? value : createRedactor(added).deep(value);
    },
    /** Ships what is queued; later lines (a dying process's last output after the run ended) are dropped. */
    async close(): Promise<void> {
      await flush();
      closed = true;
    },
  };
}

export type LogShipper = ReturnType<typeof createLogShipper>;
