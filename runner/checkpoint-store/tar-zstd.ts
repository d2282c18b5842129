import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { handCommand, standbyGuard } from "../workload/criu-guard.ts";
import { createGuardStandby, type GuardStandby } from "../workload/criu-standby.ts";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sha256OffThread } from "./file-digest.ts";
import { createSealStream, openSealedFiles } from "./sealed-stream.ts";

/**
 * `tar -C dir -cf - . | zstd -1 | seal(key) > file`: CRIU images shrink to about 30 % at zstd's fastest level,
 * then are sealed with the checkpoint's own key as a stream. Resolves with the sha256 of the file as written.
 * Aborting `signal` kills both children and stops the write.
 */
export async function packDir(dir: string, file: string, key: Buffer, signal?: AbortSignal): Promise<{ sha256: string }> {
  const tar = spawn("tar", ["-C", dir, "--numeric-owner", "-cf", "-", "."], { stdio: ["ignore", "pipe", "pipe"] });
  const zstd = spawn("zstd", ["-1", "-T0", "-q", "-c"], { stdio: [tar.stdout as Readable, "pipe", "pipe"] });
  tar.stdout?.destroy(); // zstd holds its own copy; ours must not read (or keep tar alive if zstd dies)
  const abort = () => [tar, zstd].forEach((child) => child.kill("SIGKILL"));
  signal?.addEventListener("abort", abort, { once: true });
  if (signal?.aborted) abort();
  const hash = createHash("sha256");
  try {
    await Promise.all([
      finished(tar, "tar"),
      finished(zstd, "zstd"),
      pipeline(zstd.stdout as Readable, createSealStream(key), tap(hash), createWriteStream(file, { mode: 0o600 }), { signal }),
    ]);
  } finally {
    signal?.removeEventListener("abort", abort);
  }
  return { sha256: hash.digest("hex") };
}

/**
 * `tar -C dir -cf - . | zstd -1 | seal(key)` into `sink` (a store's upload); resolves once every byte
 * reached the sink. Aborting `signal` kills both children and fails the pipeline.
 */
export async function packDirInto(dir: string, sink: Writable, key: Buffer, signal?: AbortSignal): Promise<void> {
  const tar = spawn("tar", ["-C", dir, "--numeric-owner", "-cf", "-", "."], { stdio: ["ignore", "pipe", "pipe"] });
  const zstd = spawn("zstd", ["-1", "-T0", "-q", "-c"], { stdio: [tar.stdout as Readable, "pipe", "pipe"] });
  tar.stdout?.destroy();
  const abort = () => [tar, zstd].forEach((child) => child.kill("SIGKILL"));
  signal?.addEventListener("abort", abort, { once: true });
  if (signal?.aborted) abort();
  try {
    const results = await Promise.allSettled([pipeline(zstd.stdout as Readable, createSealStream(key), sink, { signal }), finished(tar, "tar"), finished(zstd, "zstd")]);
    // The sink's own failure first: the children then die of SIGPIPE, which says nothing.
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) {
      abort();
      throw failure.reason;
    }
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}

/**
 * `open(key) < file > plain; zstd -d plain | tar -C dir -xf -`, and the sha256 of the file's bytes,
 * hashed on a worker thread while this one opens the seal (file-digest.ts): the caller compares it with
 * the expected digest before anything unpacked is used. tar starts only once every record has passed
 * the seal's authentication under the checkpoint's own key.
 */
export async function unpackFile(file: string, dir: string, key: Buffer): Promise<{ sha256: string }> {
  const digest = sha256OffThread([file]);
  digest.catch(() => {}); // an unpack that fails first is what the caller hears of
  await unpackFiles([file], dir, key);
  return { sha256: await digest };
}

const UNPACK_SHELL = "bash";
/**
 * One spawn for both (a fork of this large process costs 10–20 ms each); pipefail: either one failing fails it.
 * `-b 2048`: tar reads 1 MiB records, not 10 KiB ones (any archive's blocking reads this way): a ~40 MiB
 * checkpoint unpacked in 121–124 ms p50 against 135–140 ms (bench/suspend-resume, twelfth round).
 */
const UNPACK_SCRIPT = 'set -o pipefail; zstd -d -q -c -- "$1" | tar -b 2048 -C "$2" --numeric-owner -xf -';

/**
 * `open(key) | zstd -d | tar -x` over the concatenation of `files` (a checkpoint stored as several verified blobs).
 * The opened checkpoint goes to a file beside `dir` first, not down a pipe into zstd: fed by this process through a 64 KiB
 * pipe, zstd waited on each refill, and a ~40 MiB checkpoint took 245–280 ms to unpack against 185–235 ms this way
 * (bench/suspend-resume, "Tenth round").
 */
export async function unpackFiles(files: string[], dir: string, key: Buffer): Promise<void> {
  const base = `${dir}.${randomUUID()}`;
  const opened = `${base}.zst`;
  try {
    await openSealedFiles(files, opened, key);
    const command = [UNPACK_SHELL, "-c", UNPACK_SCRIPT, "unpack", opened, dir];
    const waiting = unpackShells().take();
    if (waiting) {
      // Its command goes through a file of ours, in a dir beside the one it unpacks into (not in it: that one is the checkpoint's).
      await mkdir(`${base}.command`, { mode: 0o700 }).catch((error: unknown) => {
        waiting.stdin?.end(); // it ends, having run nothing
        throw error;
      });
      handCommand(waiting, `${base}.command`, { cwd: "/", command });
    }
    await finished(waiting ?? spawn(command[0]!, command.slice(1), { stdio: ["ignore", "ignore", "pipe"] }), "zstd -d | tar -x");
  } finally {
    await Promise.all([rm(opened, { force: true }), rm(`${base}.command`, { recursive: true, force: true })]);
  }
}

/**
 * A shell started ahead for the next unpack (criu-standby.ts, the guard that runs a handed command): the
 * unpack on a resume's path then forks nothing. A fork of the runner blocks it 10–20 ms here, and every
 * page it writes afterwards faults once more (bench/suspend-resume, twenty-second round). Started at the
 * first unpack of this process, again after each; it dies with the process.
 */
let shells: GuardStandby | null = null;
const unpackShells = () => (shells ??= createGuardStandby(() => standbyGuard({ setpriv: "setpriv", bash: UNPACK_SHELL }, "checkpoint-unpack"), 0));

function tap(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
}


function finished(child: ChildProcess, name: string): Promise<void> {
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  return new Promise((resolve, reject) => {
    child.once("error", (err) => reject(new Error(`${name} failed to start: ${err.message}`, { cause: err })));
    child.once("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${name} exited with ${signal ?? code}: ${stderr.trim() || "no output"}`));
    });
  });
}
