import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { guardedCriu, handCommand, standbyGuard } from "../workload/criu-guard.ts";
import { createGuardStandby, type GuardStandby } from "../workload/criu-standby.ts";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createSealStream, openSealedFiles } from "./sealed-stream.ts";

/**
 * `tar -C dir -cf - . | zstd -1 | seal(key) > file`: CRIU images shrink to about 30 % at zstd's fastest level,
 * then are sealed with the checkpoint's own key as a stream. Resolves with the sha256 of the file as written.
 * Aborting `signal` ends `tar | zstd` and stops the write.
 */
export async function packDir(dir: string, file: string, key: Buffer, signal?: AbortSignal): Promise<{ sha256: string }> {
  const hash = createHash("sha256");
  await pack(dir, signal, (compressed) => pipeline(compressed, createSealStream(key), tap(hash), createWriteStream(file, { mode: 0o600 }), { signal }));
  return { sha256: hash.digest("hex") };
}

/**
 * `tar -C dir -cf - . | zstd -1 | seal(key)` into `sink` (a store's upload); resolves once every byte
 * reached the sink. Aborting `signal` ends `tar | zstd` and fails the pipeline.
 */
export async function packDirInto(dir: string, sink: Writable, key: Buffer, signal?: AbortSignal): Promise<void> {
  await pack(dir, signal, (compressed) => pipeline(compressed, createSealStream(key), sink, { signal }));
}

/** pipefail: tar or zstd failing fails it. */
const PACK_SCRIPT = 'set -o pipefail; tar -C "$1" --numeric-owner -cf - . | zstd -1 -T0 -q -c';

/** `tar | zstd` of `dir` (a shell of ours runs it: runShell), its output through `consume`; the first failure is the one thrown. */
async function pack(dir: string, signal: AbortSignal | undefined, consume: (compressed: Readable) => Promise<void>): Promise<void> {
  const { child, cleanup } = await runShell([SHELL, "-c", PACK_SCRIPT, "pack", dir]);
  // TERM: the shell's guard ends tar and zstd with it (criu-guard.ts).
  const abort = () => child.kill("SIGTERM");
  signal?.addEventListener("abort", abort, { once: true });
  if (signal?.aborted) abort();
  try {
    const results = await Promise.allSettled([consume(child.stdout as Readable), finished(child, "tar | zstd")]);
    // The consumer's own failure first (a full disk, an upload refused): tar and zstd then die of SIGPIPE, which says nothing.
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) {
      abort();
      throw failure.reason;
    }
  } finally {
    signal?.removeEventListener("abort", abort);
    await cleanup();
  }
}

/** The sha256 of a file, read as a stream. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), tap(hash), devNull());
  return hash.digest("hex");
}

/**
 * `open(key) < file > plain; zstd -d plain | tar -C dir -xf -`, hashing the file's bytes as they are
 * read (one read, not a hashing pass first): resolves with their sha256, which the caller compares
 * with the expected digest before anything unpacked is used. tar starts only once every record has
 * passed the seal's authentication under the checkpoint's own key.
 */
export async function unpackFile(file: string, dir: string, key: Buffer): Promise<{ sha256: string }> {
  const hash = createHash("sha256");
  await unpackFiles([file], dir, key, hash);
  return { sha256: hash.digest("hex") };
}

const SHELL = "bash";
/**
 * One shell for both; pipefail: either one failing fails it.
 * `-b 2048`: tar reads 1 MiB records, not 10 KiB ones (any archive's blocking reads this way): a ~40 MiB
 * checkpoint unpacked in 121–124 ms p50 against 135–140 ms (bench/suspend-resume, twelfth round).
 */
const UNPACK_SCRIPT = 'set -o pipefail; zstd -d -q -c -- "$1" | tar -b 2048 -C "$2" --numeric-owner -xf -';

/**
 * `unpackFile` over the concatenation of `files` (a checkpoint stored as several verified blobs); `hash` sees every byte read.
 * The opened checkpoint goes to a file beside `dir` first, not down a pipe into zstd: fed by this process through a 64 KiB
 * pipe, zstd waited on each refill, and a ~40 MiB checkpoint took 245–280 ms to unpack against 185–235 ms this way
 * (bench/suspend-resume, "Tenth round").
 */
export async function unpackFiles(files: string[], dir: string, key: Buffer, hash?: ReturnType<typeof createHash>): Promise<void> {
  const opened = `${dir}.${randomUUID()}.zst`;
  try {
    await openSealedFiles(files, opened, key, hash);
    const { child, cleanup } = await runShell([SHELL, "-c", UNPACK_SCRIPT, "unpack", opened, dir]);
    child.stdout?.resume(); // neither writes there
    await finished(child, "zstd -d | tar -x").finally(cleanup);
  } finally {
    await rm(opened, { force: true });
  }
}

/**
 * Runs `command` (stdin /dev/null; stdout and stderr piped to us) under a guard that ends all it started when
 * killed with TERM (criu-guard.ts): the one waiting ahead when there is one, else a new one. The waiting one
 * keeps a fork of this process off a run's path (pack on a suspend, unpack on a resume): a fork of the runner
 * blocks it 10–20 ms here, and every page it writes afterwards faults once more (bench/suspend-resume,
 * twenty-second round). Its command goes through a file in a dir of ours, which `cleanup` removes.
 */
async function runShell(command: string[]): Promise<{ child: ChildProcess; cleanup: () => Promise<void> }> {
  const waiting = shells().take();
  if (!waiting) {
    const [file, args] = guardedCriu(SHELL_TOOLS, command);
    return { child: spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] }), cleanup: async () => {} };
  }
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-shell-")).catch((error: unknown) => {
    waiting.stdin?.end(); // it ends, having run nothing
    throw error;
  });
  handCommand(waiting, dir, { cwd: "/", command });
  return { child: waiting, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const SHELL_TOOLS = { setpriv: "setpriv", bash: SHELL };
/** The shell waiting for the next pack or unpack (criu-standby.ts): started at this process's first, again after each; it dies with the process. */
let waitingShells: GuardStandby | null = null;
const shells = () => (waitingShells ??= createGuardStandby(() => standbyGuard(SHELL_TOOLS, "checkpoint-shell"), 0));

function tap(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
}

function devNull(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
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
