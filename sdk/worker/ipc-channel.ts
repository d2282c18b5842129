import { Socket } from "node:net";
import type { RunnerToTask, TaskToRunner } from "../../schemas/ipc.ts";
import { RUNNER_TO_TASK_TYPES } from "../../schemas/ipc-calls.ts";

/**
 * Newline-delimited JSON on fd 3, a pipe the runner made. After a CRIU restore fd 3 is a fresh pipe
 * from the restoring runner; the socket object here does not notice.
 */
export interface IpcChannel {
  send(message: TaskToRunner): void;
  onMessage(handler: (message: RunnerToTask) => void): void;
  /** Resolves once everything sent so far was handed to the kernel. */
  flush(): Promise<void>;
}

const RUNNER_TYPES = new Set<string>(RUNNER_TO_TASK_TYPES);

/**
 * A line from the runner, checked for its `type` only. The runner is the platform's own code, which
 * builds these messages from `RunnerToTask` and parses every message a task sends (the task is the
 * untrusted side). A task process loads no zod for them: importing zod and building the schemas was
 * ~130 ms of CPU of a task process's ~250 ms start on this machine (bench/trigger-latency).
 */
export function readRunnerMessage(line: string): RunnerToTask {
  const message = JSON.parse(line) as { type?: unknown } | null;
  if (typeof message !== "object" || message === null || typeof message.type !== "string" || !RUNNER_TYPES.has(message.type)) {
    throw new Error(`not a message from the runner: ${line.slice(0, 200)}`);
  }
  return message as RunnerToTask;
}

export function openIpcChannel(fd = 3): IpcChannel {
  const socket = new Socket({ fd, readable: true, writable: true });
  const handlers: Array<(message: RunnerToTask) => void> = [];
  let buffered = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (!line.trim()) continue;
      const message = readRunnerMessage(line);
      for (const handler of handlers) handler(message);
    }
  });
  // The runner closed our channel: nothing more will come, and nobody would hear us.
  socket.on("end", () => process.exit(0));
  socket.on("error", () => process.exit(1));
  return {
    send(message) {
      socket.write(`${JSON.stringify(message)}\n`);
    },
    onMessage(handler) {
      handlers.push(handler);
    },
    flush() {
      return new Promise((resolve) => socket.write("", () => resolve()));
    },
  };
}
