import { execFile, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { guardedCriu, handCommand, type CriuGuardTools, type GuardCommand } from "./criu-guard.ts";
import { criuCommand, type TaskUser } from "./criu-user.ts";

const run = promisify(execFile);
const MIN_MAJOR = 4;
const MIN_MINOR = 2;

export type CriuDetection = { ok: true; path: string; version: string } | { ok: false; reason: string };

/**
 * CRIU must be >= 4.2 (4.1 cannot dump a process holding a socket on kernels >= 6.16) and
 * `criu check` must pass. The reason string is shown to operators as-is.
 */
export async function detectCriu(criuPath: string): Promise<CriuDetection> {
  let versionOut: string;
  try {
    versionOut = (await run(criuPath, ["--version"], { timeout: 10_000 })).stdout;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === "ENOENT" ? `criu not found (${criuPath})` : `criu --version failed: ${String(err)}` };
  }
  const match = /Version:\s*(\d+)\.(\d+)(\S*)/.exec(versionOut);
  if (!match) return { ok: false, reason: `cannot read the criu version from: ${versionOut.trim()}` };
  const [major, minor] = [Number(match[1]), Number(match[2])];
  const version = `${major}.${minor}${match[3]}`;
  if (major < MIN_MAJOR || (major === MIN_MAJOR && minor < MIN_MINOR)) {
    return { ok: false, reason: `criu ${version} is too old: need >= ${MIN_MAJOR}.${MIN_MINOR} (run scripts/setup-system.sh)` };
  }
  try {
    await run(criuPath, ["check"], { timeout: 30_000 });
  } catch (err) {
    const out = `${(err as { stdout?: string }).stdout ?? ""}\n${(err as { stderr?: string }).stderr ?? ""}`;
    return { ok: false, reason: `criu check failed: ${interestingLines(out).join(" | ") || String(err)}` };
  }
  return { ok: true, path: criuPath, version };
}

export interface RunCriuOptions {
  /** criu's log (`-o`, in `-W`), whose error lines a failure reports. */
  logFile: string;
  /** The call's own dir of the runner's (criu's `-W`): a waiting guard's command file goes there (criu-guard.ts `handCommand`). */
  workDir: string;
  /** What criu runs under (criu-guard.ts): it and everything it forked die with the runner. */
  guard: CriuGuardTools;
  user?: TaskUser;
  /** What it runs with (criu-user.ts's criuEnvironment). */
  env?: NodeJS.ProcessEnv;
  /** A guard started ahead with that same `env` (criu-standby.ts) to hand the command to instead of spawning one. */
  waiting?: ChildProcess | null;
  /** A command line that does its part, then execs the rest (criu's), as the first part of the same command. */
  before?: string[] | null;
  /** A shell command run beside criu, as the one who runs criu's command (criu-guard.ts RUN); its failure fails the call. */
  beside?: string;
}

/** Runs a CRIU command that is expected to finish (dump); rejects with the log's error lines. */
export async function runCriu(criuPath: string, args: string[], options: RunCriuOptions): Promise<void> {
  const command = [...(options.before ?? []), ...criuCommand(criuPath, args, options.user)];
  const beside = options.beside ?? "";
  try {
    if (options.waiting) await runHanded(options.waiting, options.workDir, { cwd: process.cwd(), command, beside });
    else await run(...guardedCriu(options.guard, command, beside), { maxBuffer: 16 * 1024 * 1024, env: options.env });
  } catch (err) {
    throw new Error(`criu ${args[0]} failed: ${await logSummary(options.logFile, err)}`, { cause: err });
  }
}

/** `job` run by a waiting guard: resolves on exit 0, else rejects with its stderr (as execFile does). */
async function runHanded(guard: ChildProcess, dir: string, job: GuardCommand): Promise<void> {
  // Pipes beyond stdio are a restore's: a dump has no use for them.
  guard.stdio.slice(3).forEach((stream) => stream?.destroy());
  let stderr = "";
  guard.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-16_000)));
  guard.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => guard.once("close", (code, signal) => resolve({ code, signal })));
  handCommand(guard, dir, job);
  const { code, signal } = await exited;
  if (code !== 0) throw Object.assign(new Error(`${job.command[0]} exited with ${signal ?? code}`), { code, signal, stderr });
}

/** The error lines of a CRIU log (without the harmless RLIMIT_NOFILE noise), for error messages. */
export async function logSummary(logFile: string, fallback?: unknown): Promise<string> {
  const text = await readFile(logFile, "utf8").catch(() => "");
  const lines = interestingLines(text);
  if (lines.length > 0) return lines.slice(-6).join(" | ");
  const stderr = (fallback as { stderr?: string } | undefined)?.stderr?.trim();
  return stderr || (fallback ? String(fallback) : `no error in ${logFile}`);
}

function interestingLines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    // tar's own lines say which file failed a tmpfs dump ("file changed as we read it").
    .filter((line) => line && (/error|fail/i.test(line) || /^tar: /.test(line)) && !/RLIMIT_NOFILE|kdat cache/.test(line));
}
