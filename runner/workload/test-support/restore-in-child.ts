// Restores a checkpoint in a process of its own (a different runner than the one that dumped),
// talks to the task, asks it to exit with a code, and prints what it saw as one JSON line.
import { createProcessRuntime } from "../index.ts";
import { collect, createIpcClient } from "./ipc-client.ts";

const [imageDir, exitCode] = process.argv.slice(2);
const runtime = await createProcessRuntime({ checkpoints: true });
const proc = await runtime.restore(imageDir, { cwd: process.cwd() });
const stdout = collect(proc.stdout);
const stderr = collect(proc.stderr);
const ipc = createIpcClient(proc.ipc);
const state = await ipc.request({ cmd: "state" });
const said = await ipc.request({ cmd: "say", text: "hello from the restored task" });
ipc.send({ cmd: "exit", code: Number(exitCode) });
const exit = await proc.exited;
process.stdout.write(`${JSON.stringify({ state, said, exit, stdout: stdout.text(), stderr: stderr.text() })}\n`);
