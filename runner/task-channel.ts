import type { Duplex } from "node:stream";
import { TaskToRunner, type RunnerToTask } from "../schemas/index.ts";
import { readLines } from "./line-reader.ts";

/** The runner's end of a task process's fd-3 pipe: JSON lines, parsed with the IPC schema. */
export function openTaskChannel(ipc: Duplex, onMessage: (message: TaskToRunner) => void, onBadMessage: (problem: string) => void) {
  const stopReading = readLines(ipc, (line) => {
    if (!line.trim()) return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      return onBadMessage(`task process sent a line that is not JSON: ${line.slice(0, 200)}`);
    }
    const parsed = TaskToRunner.safeParse(json);
    if (!parsed.success) return onBadMessage(`task process sent an unknown message: ${parsed.error.issues[0]?.message}`);
    onMessage(parsed.data);
  });
  return {
    send(message: RunnerToTask): void {
      if (!ipc.writable) return;
      ipc.write(`${JSON.stringify(message)}\n`);
    },
    close(): void {
      ipc.end();
    },
    /** Stop reading the channel, leaving it open (a kept-alive process's next run reads it). */
    detach(): void {
      stopReading();
    },
  };
}

export type TaskChannel = ReturnType<typeof openTaskChannel>;
