import type { RunContext } from "../../schemas/index.ts";
import { serializeError, toError } from "../errors.ts";
import { getTask } from "../registry.ts";
import { setRunRuntime } from "../run-runtime.ts";
import type { IpcChannel } from "./ipc-channel.ts";
import { createIpcRunRuntime } from "./run-runtime-ipc.ts";

export interface ActiveRun {
  runtime: ReturnType<typeof createIpcRunRuntime>;
  abort: AbortController;
}

/** Runs one attempt of a task and reports `completed` or `failed`; on failure, compensations run first. */
export async function executeRun(channel: IpcChannel, ctx: RunContext, payload: unknown, onStart: (run: ActiveRun) => void): Promise<void> {
  const runtime = createIpcRunRuntime(channel, ctx);
  const abort = new AbortController();
  onStart({ runtime, abort });
  setRunRuntime(runtime);
  try {
    const definition = getTask(ctx.taskId);
    if (!definition) throw new Error(`task "${ctx.taskId}" is not in this bundle`);
    const output = await definition.options.run(payload, { ctx, signal: abort.signal });
    channel.send({ type: "completed", output: output === undefined ? null : JSON.parse(JSON.stringify(output)) });
  } catch (thrown) {
    const error = toError(thrown);
    await runCompensations(runtime.compensations);
    channel.send({ type: "failed", error: serializeError(error) });
  } finally {
    setRunRuntime(null);
  }
}

async function runCompensations(compensations: Array<{ name: string; fn: () => unknown }>): Promise<void> {
  while (compensations.length > 0) {
    const { name, fn } = compensations.pop()!;
    try {
      console.info(`rollback: running "${name}"`);
      await fn();
    } catch (thrown) {
      const error = toError(thrown);
      console.error(`rollback "${name}" failed: ${error.name}: ${error.message}`);
    }
  }
}
