import { Writable } from "node:stream";

/** A pino destination that keeps each run's `startedAt` marks from the runner's "run handed to its process" lines. */
export function handedLog(): { sink: Writable; handed: Map<string, Record<string, number>> } {
  const handed = new Map<string, Record<string, number>>();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line.includes("run handed to its process")) continue;
        const entry = JSON.parse(line) as { runId: string; startedAt: Record<string, number> };
        handed.set(entry.runId, entry.startedAt);
      }
      done();
    },
  });
  return { sink, handed };
}
