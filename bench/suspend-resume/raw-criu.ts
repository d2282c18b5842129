import { execFile, spawn } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { dirSize, pollFor } from "./util.ts";

const run = promisify(execFile);

export interface RawSample {
  readyMs: number;
  dumpMs: number;
  restoreMs: number;
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

  t = performance.now();
  await run("criu", ["restore", "-d", "-D", images, "-o", "restore.log", "--shell-job", "--pidfile", path.join(images, "restored.pid")]);
  const restoreMs = performance.now() - t;
  const restoredPid = Number(await readFile(path.join(images, "restored.pid"), "utf8"));
  process.kill(restoredPid, "SIGKILL");
  await rm(images, { recursive: true, force: true });
  return { readyMs, dumpMs, restoreMs, imageBytes };
}
