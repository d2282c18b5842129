import type { Duplex } from "node:stream";

/**
 * Reads a fresh task process's fd-3 channel until its `ready` line, then pauses the channel and puts
 * back whatever else came (lines before or after `ready`), so the session that takes the process
 * later reads the rest from where it was. Rejects when the channel ends first (the process died
 * while it started). The caller resumes the channel once someone listens again.
 */
export function readReady(ipc: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const cleanup = () => {
      ipc.off("data", onData);
      ipc.off("end", onEnd);
      ipc.off("close", onEnd);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error("the task process closed its channel before it was ready"));
    };
    const onData = (chunk: Buffer | string) => {
      buffered = Buffer.concat([buffered, typeof chunk === "string" ? Buffer.from(chunk) : chunk]);
      let start = 0;
      for (let nl = buffered.indexOf(10); nl >= 0; nl = buffered.indexOf(10, start)) {
        if (isReady(buffered.subarray(start, nl).toString("utf8"))) {
          cleanup();
          ipc.pause();
          const rest = Buffer.concat([buffered.subarray(0, start), buffered.subarray(nl + 1)]);
          if (rest.length > 0) ipc.unshift(rest);
          return resolve();
        }
        start = nl + 1;
      }
    };
    ipc.on("data", onData);
    ipc.once("end", onEnd);
    ipc.once("close", onEnd);
  });
}

function isReady(line: string): boolean {
  try {
    return (JSON.parse(line) as { type?: unknown }).type === "ready";
  } catch {
    return false;
  }
}
