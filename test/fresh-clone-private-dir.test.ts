// A clone of this repository in a directory only root can enter (as /root is, mode 0700): the
// `postgres` user PostgreSQL runs as reaches neither the binaries in its node_modules nor a project's
// .stasis/pg. `stasis dev` and the test suite's global setup must still start PostgreSQL there.
// The clone is of the work tree's HEAD, with node_modules hard-linked (`cp -al`) to keep it fast.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmod, cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { relocatedDataLocation } from "../server/index.ts";
import { processesMatching } from "./support/processes.ts";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const run = promisify(execFile);
let base: string;
let clone: string;
let project: string;
const children: ChildProcess[] = [];

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("VITEST") || name === "DATABASE_URL" || name.startsWith("STASIS_API_")) delete env[name];
  delete env.NODE_OPTIONS;
  return env;
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "stasis-private-"));
  await chmod(base, 0o700);
  clone = join(base, "stasis");
  await run("git", ["clone", "-q", REPO_ROOT, clone]);
  await run("cp", ["-al", join(REPO_ROOT, "node_modules"), join(clone, "node_modules")]);
  project = join(base, "project");
  await cp(join(clone, "test", "fixtures", "basic"), project, { recursive: true });
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  if (project) await rm(dirname(relocatedDataLocation(join(project, ".stasis", "pg")).dataDir), { recursive: true, force: true });
  if (base) await rm(base, { recursive: true, force: true });
});

it("stasis dev starts in a project under a 0700 directory, and Ctrl-C leaves nothing running", async () => {
  const child = spawn(process.execPath, [join(clone, "cli", "bin.mjs"), "dev", "--json", "--port", "0", "--no-checkpoints"], { cwd: project, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const line = await waitFor("stasis dev to print its ready line", () => {
    if (child.exitCode !== null) throw new Error(`stasis dev exited ${child.exitCode}: ${stderr}`);
    return stdout.includes("\n") ? stdout.split("\n")[0] : null;
  }, { timeoutMs: 120_000 });
  const ready = JSON.parse(line) as { apiUrl: string; apiKey: string };
  const whoami = await fetch(`${ready.apiUrl}/api/v1/whoami`, { headers: { authorization: `Bearer ${ready.apiKey}` } });
  expect(whoami.status).toBe(200);
  // It says once where the data is, since it is not in the project.
  const relocated = relocatedDataLocation(join(project, ".stasis", "pg")).dataDir;
  expect(stderr.split(relocated).length - 1, stderr).toBe(1);
  expect((await processesMatching(relocated)).length).toBeGreaterThan(0);

  child.kill("SIGINT");
  expect(await exited).toBe(0);
  await waitFor("no PostgreSQL left running for the project", async () => (await processesMatching(relocated)).length === 0, { timeoutMs: 15_000 });
  await waitFor("nothing left running from the clone or the project", async () => (await processesMatching(base)).length === 0, { timeoutMs: 15_000 });
});

it("the test suite's global setup starts PostgreSQL from the clone", async () => {
  const result = await run(process.execPath, [join(clone, "node_modules", "vitest", "vitest.mjs"), "run", "test/embedded-postgres-password.test.ts"], { cwd: clone, env: childEnv(), timeout: 170_000 }).catch((error: { code?: number; stdout?: string; stderr?: string }) => error);
  expect(`${result.stdout}\n${result.stderr}`).toMatch(/1 passed/);
});
