import { Socket } from "node:net";
import { RunnerToTask, type TaskToRunner } from "../../schemas/index.ts";

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
      const message = RunnerToTask.parse(JSON.parse(line));
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
