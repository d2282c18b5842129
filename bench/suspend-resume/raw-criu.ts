import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { populateDumpedMemory } from "../../runner/workload/populate-dumped-memory.ts";
import { dirSize, pollFor } from "./util.ts";

const run = promisify(execFile);

export interface RawSample {
  readyMs: number;
  dumpMs: number;
  restoreMs: number;
  /** The same images restored again, marked as a runner's restore marks them (populate-dumped-memory.ts). */
  restorePopulatedMs: number;
  imageBytes: number;
}

/**
 * Plain CRIU on a plain process (own session, stdio on /dev/null, no namespace, no sockets to
 * hand over): the floor the runtime's checkpoint/restore is compared with.
 */
export async function rawCriuSample(script: string, mb: number, dir: string): Promise<RawSample> {
  const status = path.join(dir, `raw-${mb}.status`);
  const images = path.join(dir, `raw-${mb}.img`);
  await rm(status, { force: true });
  await mkdir(images, { recursive: true });
  const started = performance.now();
  const child = spawn("setsid", [process.execPath, script, String(mb), status], { stdio: "ignore", env: { UV_USE_IO_URING: "0" }, detached: false });
  const readyMs = await pollFor(async () => ((await readFile(status, "utf8").catch(() => "")).includes("ready") ? performance.now() - started : undefined), 60_000, "raw task ready");
  const pid = child.pid as number;
  const gone = new Promise((resolve) => child.once("exit", resolve)); // reaped, so its PID is free again

  let t = performance.now();
  await run("criu", ["dump", "-t", String(pid), "-D", images, "-o", "dump.log", "--shell-job"]);
  const dumpMs = performance.now() - t;
  const imageBytes = await dirSize(images);
  await gone;

  const restoreMs = await restoreAndKill(images);
  populateDumpedMemory(images);
  const restorePopulatedMs = await restoreAndKill(images);
  await rm(images, { recursive: true, force: true });
  return { readyMs, dumpMs, restoreMs, restorePopulatedMs, imageBytes };
}

/** `criu restore` of the images, timed; the restored process is killed and gone (its PID free for the next restore) on return. */
async function restoreAndKill(images: string): Promise<number> {
  const pidFile = path.join(images, "restored.pid");
  await rm(pidFile, { force: true });
  const t = performance.now();
  await run("criu", ["restore", "-d", "-D", images, "-o", "restore.log", "--shell-job", "--pidfile", pidFile]);
  const restoreMs = performance.now() - t;
  const restoredPid = Number(await readFile(pidFile, "utf8"));
  process.kill(restoredPid, "SIGKILL");
  await pollFor(async () => (existsSync(`/proc/${restoredPid}`) ? undefined : true), 10_000, `restored process ${restoredPid} to be gone`);
  return restoreMs;
}
