import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { TaskToRunner, type TaskManifestEntry } from "../schemas/index.ts";
import { BuilderError } from "./errors.ts";
import { sandboxEnv } from "./isolated-build/sandbox-env.ts";

export interface IndexDefaults {
  retry?: Record<string, unknown>;
  machine?: Record<string, unknown>;
  maxDuration?: number;
  checkpoint?: { every: string | number };
  processKeepAlive?: unknown;
}

type IndexedTask = Extract<TaskToRunner, { type: "indexed" }>["tasks"][number];

/**
 * Runs `node <entry>` with STASIS_WORKER_MODE=index in its own process (task modules run their
 * top-level code, which must not touch the builder) and reads its one line from fd 3.
 */
export async function indexBundle(entry: string, defaults: IndexDefaults, timeoutMs = 60_000): Promise<TaskManifestEntry[]> {
  const child = spawn(process.execPath, [entry], {
    stdio: ["ignore", "pipe", "pipe", "pipe"],
    env: { ...sandboxEnv(process.env), STASIS_WORKER_MODE: "index", STASIS_INDEX_DEFAULTS: JSON.stringify(defaults), UV_USE_IO_URING: "0", NODE_OPTIONS: "" },
  });
  let output = "";
  let fd3 = "";
  child.stdout!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  child.stderr!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  (child.stdio[3] as Readable).on("data", (c: Buffer) => (fd3 += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c) => resolve(c));
  }).finally(() => clearTimeout(timer));

  const line = fd3.split("\n").find((l) => l.trim() !== "");
  const parsed = line ? TaskToRunner.safeParse(JSON.parse(line)) : null;
  if (parsed?.success && parsed.data.type === "index-error") {
    const code = /defined twice/.test(parsed.data.message) ? "DUPLICATE_TASK_ID" : "INDEX_FAILED";
    throw new BuilderError(code, `indexing the tasks failed: ${parsed.data.message}`);
  }
  if (!parsed?.success || parsed.data.type !== "indexed" || code !== 0) {
    throw new BuilderError("INDEX_FAILED", `indexing the tasks failed (exit ${code}): ${output.trim() || "no output"}`);
  }
  return parsed.data.tasks.map((t: IndexedTask) => {
    if (!t.filePath || !t.exportName) throw new BuilderError("INDEX_FAILED", `task ${t.id} was indexed without its file`);
    return t as TaskManifestEntry;
  });
}
