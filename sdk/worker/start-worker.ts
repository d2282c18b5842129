import { writeSync } from "node:fs";
import type { TaskToRunner } from "../../schemas/ipc.ts";
import { RESTORED_NOTICE_CALL_ID } from "../../schemas/ipc-calls.ts";
import { executeRun, type ActiveRun } from "./execute-run.ts";
import { captureConsole } from "./capture-console.ts";
import { closePooledConnections } from "./close-connections.ts";
import { installRefreshableRandomness, refreshRandomnessAfterRestore } from "./refresh-randomness.ts";
import type { IndexDefaults, TaskModule } from "./index-tasks.ts";
import { openIpcChannel } from "./ipc-channel.ts";

/**
 * Entry of every task bundle. `STASIS_WORKER_MODE=index` prints the task list and exits; otherwise
 * the process waits on fd 3 for `execute` messages from its runner.
 */
export async function startWorker(modules: TaskModule[]): Promise<void> {
  if (process.env.STASIS_WORKER_MODE === "index") return indexAndExit(modules);
  installRefreshableRandomness();
  const channel = openIpcChannel();
  captureConsole(channel);
  let active: ActiveRun | null = null;
  process.on("unhandledRejection", (reason) => console.error("unhandled rejection:", reason));

  let maybeRestored = false;
  let runs = 0;
  channel.onMessage((message) => {
    // A checkpoint may have been taken since `prepare-checkpoint`; the next message comes after the
    // restore (or the dump did not happen: refreshing then is harmless).
    // A restore of a process dumped while it ran (a drain, a safety checkpoint) may come without `prepare-checkpoint`
    // having been read (a busy task): the runner's notice says so.
    const restoredNotice = message.type === "reply" && message.callId === RESTORED_NOTICE_CALL_ID;
    if ((maybeRestored && message.type !== "prepare-checkpoint") || restoredNotice) {
      maybeRestored = false;
      refreshRandomnessAfterRestore();
    }
    switch (message.type) {
      case "execute":
        // A kept-alive process (processKeepAlive) taking its next run: nothing drawn for the last run is handed out again.
        if (runs++ > 0) refreshRandomnessAfterRestore();
        void executeRun(channel, message.ctx, message.payload, (run) => (active = run)).finally(() => (active = null));
        return;
      case "prepare-checkpoint":
        maybeRestored = true;
        void closePooledConnections()
          .then(() => channel.flush())
          .then(() => channel.send({ type: "checkpoint-ready" }));
        return;
      case "reply":
        if (restoredNotice) return;
        active?.runtime.handle(message);
        return;
      case "cancel":
        active?.abort.abort(new Error(message.reason));
        return;
      default:
        active?.runtime.handle(message);
    }
  });
  channel.send({ type: "ready" });
}

/** Index mode (the build): the settings' schemas load here only, never in a process that runs tasks. */
async function indexAndExit(modules: TaskModule[]): Promise<void> {
  const { indexTasks } = await import("./index-tasks.ts");
  const defaults = process.env.STASIS_INDEX_DEFAULTS ? (JSON.parse(process.env.STASIS_INDEX_DEFAULTS) as IndexDefaults) : {};
  let message: TaskToRunner;
  try {
    message = { type: "indexed", tasks: indexTasks(modules, defaults) };
  } catch (error) {
    message = { type: "index-error", message: error instanceof Error ? error.message : String(error) };
  }
  // Synchronous, so the line is out before exit.
  writeSync(3, `${JSON.stringify(message)}\n`);
  process.exit(message.type === "indexed" ? 0 : 1);
}

