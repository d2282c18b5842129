import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { open, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ConfigFifo {
  /** Settles once runc has read the spec (or gave up) and the plain config.json is in place. */
  fed: Promise<void>;
  /** runc went away without reading: unblock the writer. */
  abandon(): Promise<void>;
}

/**
 * config.json handed to `runc run` through a named pipe: the spec holds the task's environment —
 * its environment's secret variables — which must never be written to the runner's disk. runc reads
 * the file once, at start; then a plain config.json *without* the environment takes the pipe's
 * place, for later runc commands and the checkpoint's metadata (a restore needs no environment:
 * CRIU brings the process back with its own).
 */
export async function handConfigThroughFifo(file: string, spec: { process: { env: string[] } }): Promise<ConfigFifo> {
  await run("mkfifo", ["-m", "600", file]);
  let settled = false;
  const write = async () => {
    const handle = await open(file, "w"); // blocks until runc opens the pipe to read
    try {
      await handle.writeFile(JSON.stringify(spec));
    } finally {
      await handle.close();
    }
  };
  const fed = write()
    .catch(() => {}) // runc went away first (EPIPE after abandon): nothing left to feed
    .finally(async () => {
      settled = true;
      await rm(file, { force: true });
      await writeFile(file, JSON.stringify({ ...spec, process: { ...spec.process, env: [] } }, null, 2));
    });
  return {
    fed,
    async abandon() {
      if (settled) return;
      const reader = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => null);
      await reader?.close();
      await fed;
    },
  };
}
