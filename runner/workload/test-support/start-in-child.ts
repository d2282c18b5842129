// Starts (or restores) a task in a process of its own and stays alive: a stand-in for a runner
// that then crashes. Prints "started" once the task answers.
import { createProcessRuntime } from "../index.ts";

const [mode, target, logFile] = process.argv.slice(2);
const runtime = await createProcessRuntime({ checkpoints: mode === "restore" });
const proc =
  mode === "restore"
    ? await runtime.restore(target, { cwd: process.cwd() })
    : await runtime.start({ command: process.execPath, args: [target, logFile, "10"], cwd: process.cwd(), env: {} });
proc.ipc.once("data", () => process.stdout.write("started\n"));
proc.ipc.write(`${JSON.stringify({ cmd: "state" })}\n`);
setInterval(() => {}, 1_000);
