// What the end-to-end environment-variable tests share: one run of a task to its end with its log,
// and a master key rotation the way an operator does it (servers restarted with the new key in
// STASIS_ENCRYPTION_KEY and the old one in STASIS_ENCRYPTION_KEY_PREVIOUS, then `stasis admin
// rotate-key`), with a runner on the rotated server.
import { execFile } from "node:child_process";
import pino from "pino";
import { callStasisApi } from "../../builder/index.ts";
import type { LocalStack } from "../../cli/local-stack.ts";
import { createDirCheckpointStore, createImageCache, createProcessRuntime, createRunner, type Runner } from "../../runner/index.ts";
import type { LogLine, RunView } from "../../schemas/index.ts";
import { createServer, freePort, keyringFromEnv, parseMasterKey, type StasisServer } from "../../server/index.ts";
import { CLI } from "./stack.ts";
import { waitFor } from "./wait-for.ts";

export async function runToEnd(apiUrl: string, apiKey: string, taskId: string, payload: unknown = {}): Promise<{ run: RunView; logs: string[] }> {
  const { id } = await callStasisApi<{ id: string }>(apiUrl, apiKey, "POST", `/api/v1/tasks/${taskId}/trigger`, { payload });
  const run = await waitFor(`run ${id} to finish`, async () => {
    const view = await callStasisApi<RunView>(apiUrl, apiKey, "GET", `/api/v1/runs/${id}`);
    return ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT"].includes(view.status) ? view : null;
  }, { timeoutMs: 90_000 });
  const logs = (await callStasisApi<{ data: LogLine[] }>(apiUrl, apiKey, "GET", `/api/v1/runs/${id}/logs?limit=1000`)).data.map((line) => line.message);
  return { run, logs };
}

export interface RotatedStack {
  apiUrl: string;
  /** `stasis admin rotate-key --json`'s result. */
  result: { rewrapped: number; total: number; masterKeyId: string };
  /** Master key ids the project data keys are wrapped by after the rotation. */
  wrappedBy: string[];
  close(): Promise<void>;
}

/**
 * Drains the stack's in-process runners, starts a server on the same database with
 * STASIS_ENCRYPTION_KEY=`newKey` and STASIS_ENCRYPTION_KEY_PREVIOUS=`oldKey`, runs the CLI's
 * `stasis admin rotate-key` against it, and starts a runner on it.
 */
export async function rotateMasterKey(stack: LocalStack, oldKey: string, newKey: string): Promise<RotatedStack> {
  for (const runner of stack.runners) await runner.drain(5_000);
  const keyring = keyringFromEnv({ STASIS_ENCRYPTION_KEY: newKey, STASIS_ENCRYPTION_KEY_PREVIOUS: oldKey })!;
  let server: StasisServer | null = null;
  let runner: Runner | null = null;
  const close = async () => {
    await runner?.drain(2_000);
    await server?.close();
  };
  try {
    server = await createServer({ db: stack.db, adminToken: stack.adminToken, runnerToken: stack.runnerToken, logger: false, keyring });
    const port = await freePort();
    await server.app.listen({ host: "127.0.0.1", port });
    const apiUrl = `http://127.0.0.1:${port}`;
    const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(process.execPath, [CLI, "admin", "rotate-key", "--json"], { env: { PATH: process.env.PATH, HOME: process.env.HOME, STASIS_API_URL: apiUrl, STASIS_ADMIN_TOKEN: stack.adminToken }, timeout: 60_000 }, (error, stdout, stderr) =>
        done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    if (cli.code !== 0) throw new Error(`stasis admin rotate-key exited ${cli.code}: ${cli.stderr}`);
    runner = createRunner({
      serverUrl: apiUrl,
      runnerToken: stack.runnerToken,
      name: "after-rotation",
      capacity: 2,
      runtime: await createProcessRuntime({ workDir: stack.dirs.work }),
      checkpoints: createDirCheckpointStore(stack.dirs.checkpoints),
      appDirFor: createImageCache(stack.dirs.imageCache),
      workDir: stack.dirs.work,
      log: pino({ level: "warn" }),
    });
    await runner.start();
    const wrappedBy = await stack.db("project_data_keys").distinct("master_key_id").pluck("master_key_id");
    return { apiUrl, result: JSON.parse(cli.stdout), wrappedBy, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export const masterKeyId = (key: string) => parseMasterKey(key).id;
