// scripts/setup-system.sh waits for the package manager's lock (another install or an unattended
// upgrade holding it must not fail setup) and says which step failed when one does. The locks here
// are scratch files named through STASIS_APT_LOCKS, so the machine's real apt is never blocked.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, expect, it } from "vitest";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const dir = mkdtempSync(join(tmpdir(), "stasis-apt-lock-"));
const held: ChildProcess[] = [];
afterEach(() => {
  for (const child of held.splice(0)) release(child);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STEPS = join(REPO_ROOT, "scripts", "setup-steps.sh");

function bash(script: string, env: Record<string, string>): { child: ChildProcess; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn("bash", ["-c", `set -eEuo pipefail; source ${JSON.stringify(STEPS)}; ${script}`], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, stderr: () => stderr, exit: new Promise((resolve) => child.once("close", (code) => resolve(code))) };
}

/** Ends a lock holder and whatever it started (flock's command inherits the locked fd). */
function release(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Holds `file` locked until killed: with flock(2) (`flock`), or with fcntl like apt and dpkg (python3). */
async function holdLock(file: string, kind: "flock" | "fcntl"): Promise<ChildProcess> {
  writeFileSync(file, "");
  const child =
    kind === "flock"
      ? spawn("flock", ["--exclusive", file, "sh", "-c", "echo locked; exec sleep 300"], { stdio: ["ignore", "pipe", "inherit"], detached: true })
      : spawn("python3", ["-c", `import fcntl,sys,time\nf=open(${JSON.stringify(file)},"w")\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint("locked",flush=True)\ntime.sleep(300)`], { stdio: ["ignore", "pipe", "inherit"], detached: true });
  held.push(child);
  let out = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(`a ${kind} lock on ${file}`, () => out.includes("locked"), { timeoutMs: 10_000 });
  return child;
}

const hasPython = spawnSync("python3", ["-c", "import fcntl"]).status === 0;

for (const kind of ["flock", "fcntl"] as const) {
  it.skipIf(kind === "fcntl" && !hasPython)(`waits while a ${kind} lock is held, saying who holds it, and goes on once it is free`, async () => {
    const lock = join(dir, `lock-${kind}`);
    const holder = await holdLock(lock, kind);
    const waiting = bash("wait_for_apt_lock; echo went-on", { STASIS_APT_LOCKS: `${join(dir, "absent")} ${lock}`, STASIS_APT_LOCK_TIMEOUT: "120" });
    await waitFor("the waiting message", () => waiting.stderr().includes(`waiting for ${lock}, held by pid`), { timeoutMs: 15_000 });
    expect(waiting.stderr()).toContain(`held by pid ${holder.pid} (`);
    expect(waiting.child.exitCode).toBeNull();
    release(holder);
    expect(await waiting.exit).toBe(0);
    expect(waiting.stderr()).toContain("lock is free");
    expect(waiting.stderr()).toContain("went-on");
  });
}

it("gives up after the timeout with the step that failed", async () => {
  const lock = join(dir, "lock-timeout");
  await holdLock(lock, "flock");
  const waiting = bash('step "updating the package lists (apt-get update)"; wait_for_apt_lock; echo went-on', { STASIS_APT_LOCKS: lock, STASIS_APT_LOCK_TIMEOUT: "1" });
  expect(await waiting.exit).toBe(1);
  expect(waiting.stderr()).toContain(`${lock} is still held by pid`);
  expect(waiting.stderr()).toContain("setup failed while updating the package lists (apt-get update)");
  expect(waiting.stderr()).not.toContain("went-on");
});

it("a failing command in setup names the step it interrupted", async () => {
  const failing = bash('step "installing CRIU"; ls /nonexistent-stasis-path; echo went-on', {});
  expect(await failing.exit).not.toBe(0);
  expect(failing.stderr()).toMatch(/error: setup failed while installing CRIU \(exit 2/);
  expect(failing.stderr()).not.toContain("went-on");
});

it("goes on at once when no lock is held", async () => {
  const free = bash("wait_for_apt_lock; echo went-on", { STASIS_APT_LOCKS: join(dir, "never-locked") });
  expect(await free.exit).toBe(0);
  expect(free.stderr().trim()).toBe("went-on");
});
