import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { BuilderError, toError } from "../errors.ts";
import { packageRoot } from "../package-root.ts";
import { readableByOthers, sandboxArgv, unreachableAncestor, within, type SandboxMounts } from "../sandbox/index.ts";
import { buildUser } from "./build-user.ts";
import { childBundle } from "./child-bundle.ts";
import { SandboxMessage, type SandboxRequest } from "./protocol.ts";
import { sandboxEnv } from "./sandbox-env.ts";

const run = promisify(execFile);

export interface SandboxOptions {
  /**
   * Files and directories the build must not see (root only: a tmpfs, or /dev/null, is mounted
   * over each in the build's mount namespace). Added to STASIS_BUILD_HIDE_PATHS (`:`-separated).
   */
  hidePaths?: string[];
  /** The environment the allow-list picks from (default process.env). */
  env?: NodeJS.ProcessEnv;
  onProgress?: (message: string) => void;
  /** Aborting kills the build (and everything it started). */
  signal?: AbortSignal;
  /** Default 15 minutes. */
  timeoutMs?: number;
}

export type SandboxResult = Exclude<SandboxMessage, { type: "progress" } | { type: "error" }>;

export interface SandboxRun {
  result: SandboxResult;
  /** Where the child's `<project>/.stasis` is on the host (its build dirs are under it). */
  hostStasisDir: string;
  /** The build dir the child was given, as the host sees it. */
  hostBuildDir: string | null;
  /** Removes what the sandbox left (the child's files, the copy of the project). */
  cleanup(): Promise<void>;
}

export type IsolationMode = "build-user" | "user-namespace" | "env-only";
let probed: boolean | null = null;

/**
 * How builds are isolated here: as root, as the build user in new mount and PID namespaces
 * ("build-user"); otherwise in an unprivileged user namespace with the same mounts when the kernel
 * allows one ("user-namespace"; e.g. not on hosts that restrict them with AppArmor); otherwise by
 * the environment alone ("env-only"). STASIS_BUILD_ISOLATION=env-only forces the last.
 */
export function isolationMode(env: NodeJS.ProcessEnv = process.env): IsolationMode {
  if (process.getuid?.() === 0) return "build-user";
  if (env.STASIS_BUILD_ISOLATION === "env-only") return "env-only";
  probed ??= (() => {
    try {
      execFileSync("unshare", ["--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc", "true"], { stdio: "ignore", timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  })();
  return probed ? "user-namespace" : "env-only";
}

/**
 * Runs one untrusted build step (`builder/isolated-build/child.ts`, bundled by child-bundle.ts) of
 * the project in `projectDir`:
 *
 * - always: a fresh `node` with an allow-listed environment (sandbox-env.ts), no inherited fds but
 *   its stdio and the result pipe (fd 3);
 * - as root, additionally: as STASIS_BUILD_USER (default nobody) with no_new_privs, in its own
 *   mount and PID namespaces (everything it starts dies with it; no other process is visible in
 *   its /proc), with the hidden paths covered by empty tmpfs mounts (files by /dev/null), and the
 *   project's `.stasis` replaced by an empty dir the build owns (so `stasis dev`'s state is not
 *   visible). A project dir the build user cannot read, or one inside a hidden path (the App's
 *   clones), is copied into the sandbox first;
 * - not as root, the same namespaces and mounts inside an unprivileged user namespace where the
 *   kernel allows one (the build keeps the caller's uid, so files of that user outside the hidden
 *   paths stay readable: run the App as root, or hide what matters with STASIS_BUILD_HIDE_PATHS).
 *
 * The child's messages are parsed with zod; it reports its result on fd 3.
 */
export async function runSandboxed(projectDirInput: string, makeRequest: (childProjectDir: string, buildDir: string) => SandboxRequest, options: SandboxOptions = {}): Promise<SandboxRun> {
  const projectDir = await realpath(resolve(projectDirInput)).catch(() => resolve(projectDirInput));
  const parentEnv = options.env ?? process.env;
  const buildId = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const nodeArgs = [await childBundle()];

  const mode = isolationMode(parentEnv);
  if (mode === "env-only") {
    await assertRealDir(join(projectDir, ".stasis"), true);
    const stasisDir = await realpath(join(projectDir, ".stasis"));
    const buildDir = join(stasisDir, "build", buildId);
    const request = makeRequest(projectDir, buildDir);
    const child = spawn(process.execPath, [...nodeArgs, JSON.stringify(request)], { cwd: projectDir, env: sandboxEnv(parentEnv), stdio: ["ignore", "pipe", "pipe", "pipe"] });
    const result = await collect(child, options, () => child.kill("SIGKILL"));
    const hostBuildDir = request.mode === "build" ? buildDir : null;
    return { result, hostStasisDir: stasisDir, hostBuildDir, cleanup: async () => (hostBuildDir ? rm(hostBuildDir, { recursive: true, force: true }) : undefined) };
  }

  const user = mode === "build-user" ? buildUser(parentEnv) : null;
  const hidden = await hiddenPaths(projectDir, options.hidePaths ?? [], parentEnv);
  const sandboxRoot = await mkdtemp(join(tmpdir(), "stasis-build-"));
  const cleanup = () => rm(sandboxRoot, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  try {
    await chmod(sandboxRoot, 0o755);
    const home = await ownedDir(join(sandboxRoot, "home"), user);
    const tmp = await ownedDir(join(sandboxRoot, "tmp"), user);
    const inPlace = (!user || (await readableByOthers(projectDir))) && !hidden.some((h) => within(projectDir, h));
    let childProjectDir: string;
    let stasisDir: string;
    let stasisMount = "";
    if (inPlace) {
      childProjectDir = projectDir;
      await assertRealDir(join(projectDir, ".stasis"), true);
      stasisDir = await ownedDir(join(sandboxRoot, "stasis"), user);
      stasisMount = join(projectDir, ".stasis");
    } else {
      options.onProgress?.("copying the project into the build sandbox");
      childProjectDir = join(sandboxRoot, "project");
      await copyProject(projectDir, childProjectDir);
      stasisDir = await ownedDir(join(childProjectDir, ".stasis"), user);
    }
    const buildDir = join(childProjectDir, ".stasis", "build", buildId);
    const request = makeRequest(childProjectDir, buildDir);
    // The parent made it (its parent is not the build's): resolved now, it stays what it is.
    stasisDir = await realpath(stasisDir);
    const env = sandboxEnv(parentEnv, { HOME: home, TMPDIR: tmp });
    // Stasis itself (the SDK the bundle embeds, esbuild) under a dir the build user cannot enter
    // (a clone in /root): the build sees that dir as an empty tmpfs holding only Stasis.
    const expose = user ? await unreachableAncestor(packageRoot()) : null;
    const exposed = expose && !within(sandboxRoot, expose.ancestor) ? expose : null;
    const namespaces = [...(user ? [] : ["--user", "--map-root-user"]), "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private"];
    const mounts: SandboxMounts = {
      stage: await ownedDir(join(sandboxRoot, "expose"), null),
      expose: exposed ? [exposed.path] : [],
      before: exposed ? [{ op: "tmpfs", path: exposed.ancestor, options: "mode=0755" }] : [],
      after: [...hidden.map((path) => ({ op: "hide" as const, path })), ...(stasisMount ? [{ op: "bind" as const, from: stasisDir, to: stasisMount }] : [])],
      user,
    };
    const args = [...namespaces, "--", ...sandboxArgv(mounts, [process.execPath, ...nodeArgs, JSON.stringify(request)])];
    const child = spawn("unshare", args, { cwd: sandboxRoot, env, stdio: ["ignore", "pipe", "pipe", "pipe"] });
    const result = await collect(child, options, () => killTree(child.pid));
    return { result, hostStasisDir: stasisDir, hostBuildDir: request.mode === "build" ? join(stasisDir, "build", buildId) : null, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function assertRealDir(dir: string, create: boolean): Promise<void> {
  const st = await lstat(dir).catch(() => null);
  if (!st && create) {
    await mkdir(dir, { recursive: true });
    return;
  }
  if (!st?.isDirectory()) throw new BuilderError("BUILD_SANDBOX_FAILED", `${dir} must be a directory${st?.isSymbolicLink() ? ", not a symlink" : ""}`);
}

async function ownedDir(dir: string, user: { uid: number; gid: number } | null): Promise<string> {
  await mkdir(dir, { recursive: true });
  if (user) await chown(dir, user.uid, user.gid);
  await chmod(dir, 0o700);
  return dir;
}

/**
 * The paths hidden from a build: the caller's (the App's state dir and key, the runner's dirs),
 * STASIS_BUILD_HIDE_PATHS, and well-known places a host keeps Stasis secrets. Only existing ones;
 * never the project itself or an ancestor of the toolchain it needs.
 */
async function hiddenPaths(projectDir: string, extra: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const wanted = [...extra, ...(env.STASIS_BUILD_HIDE_PATHS ?? "").split(":"), "/etc/stasis", "/var/lib/stasis", "/run/secrets"].filter(Boolean);
  const toolchain = packageRoot();
  const out = new Set<string>();
  for (const path of wanted) {
    const real = await realpath(resolve(path)).catch(() => null);
    if (!real || real === "/" || within(toolchain, real)) continue;
    if (real === projectDir) continue;
    out.add(real);
  }
  return [...out].sort();
}

/** `cp -a` of the project (but its `.stasis`), made readable by others: the copy is the build's. */
async function copyProject(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  const entries = (await readdir(from)).filter((name) => name !== ".stasis");
  if (entries.length > 0) await run("cp", ["-a", "--", ...entries.map((name) => join(from, name)), to + "/"], { maxBuffer: 1 << 20 });
  await run("chmod", ["-R", "a+rX,go-w", to]);
}

function killTree(pid: number | undefined): void {
  if (!pid) return;
  for (const child of childrenOf(pid)) killTree(child);
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** Reads the child's fd 3 (zod-parsed lines), keeps a tail of its output, enforces the timeout and the abort. */
async function collect(child: ReturnType<typeof spawn>, options: SandboxOptions, kill: () => void): Promise<SandboxResult> {
  let output = "";
  let buffered = "";
  let result: SandboxResult | null = null;
  let failure: BuilderError | null = null;
  const onLine = (line: string) => {
    if (!line.trim()) return;
    let parsed;
    try {
      parsed = SandboxMessage.safeParse(JSON.parse(line));
    } catch {
      parsed = null;
    }
    if (!parsed?.success) {
      failure ??= new BuilderError("BUILD_SANDBOX_FAILED", `the build sent a message that is not part of the protocol: ${line.slice(0, 200)}`);
      return;
    }
    const message = parsed.data;
    if (message.type === "progress") options.onProgress?.(message.message);
    else if (message.type === "error") failure ??= new BuilderError(builderCode(message.code), message.message);
    else result ??= message;
  };
  child.stdout!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  child.stderr!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  (child.stdio[3] as Readable).on("data", (c: Buffer) => {
    buffered += c.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    lines.forEach(onLine);
  });
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  let stopped: string | null = null;
  const stop = (why: string) => {
    stopped ??= why;
    kill();
  };
  const timer = setTimeout(() => stop(`the build took longer than ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
  const onAbort = () => stop("the build was aborted");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const code = await new Promise<number | null>((resolveExit, reject) => {
    child.once("error", (error) => reject(new BuilderError("BUILD_SANDBOX_FAILED", `the build sandbox did not start: ${toError(error).message}`, { cause: error })));
    child.once("close", (c) => resolveExit(c));
  }).finally(() => {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  });
  onLine(buffered);
  if (options.signal?.aborted) throw options.signal.reason;
  if (stopped) throw new BuilderError("BUILD_SANDBOX_FAILED", `${stopped}: ${output.trim().slice(-1000) || "no output"}`);
  if (failure) throw failure;
  if (!result || code !== 0) throw new BuilderError("BUILD_SANDBOX_FAILED", `the build exited with ${code} without a result: ${output.trim() || "no output"}`);
  return result;
}

const KNOWN_CODES = new Set(["CONFIG_INVALID", "CONFIG_LOAD_FAILED", "NO_TASK_DIRS", "BUNDLE_FAILED", "INDEX_FAILED", "DUPLICATE_TASK_ID", "EXTERNALS_FAILED"]);
const builderCode = (code: string) => (KNOWN_CODES.has(code) ? code : "BUILD_SANDBOX_FAILED") as ConstructorParameters<typeof BuilderError>[0];
