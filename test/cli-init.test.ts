// `stasis init` in an empty folder as a new user runs it: the files it writes, then `npm install`,
// `stasis dev` and a run of the example task through the CLI — the two commands init prints.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunView } from "../schemas/index.ts";
import { processesMatching } from "./support/processes.ts";
import { CLI } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let root: string;
let project: string;
let dev: ChildProcess | null = null;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "stasis-init-"));
  await chmod(root, 0o755);
  project = join(root, "Acme_Tasks");
  await mkdir(project);
});

afterAll(async () => {
  if (dev && dev.exitCode === null) dev.kill("SIGKILL");
  if (root) await rm(root, { recursive: true, force: true });
});

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ["DATABASE_URL", "STASIS_API_URL", "STASIS_API_KEY"]) delete env[name];
  return env;
}

function run(file: string, args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) =>
    execFile(file, args, { cwd: project, env: childEnv(), timeout }, (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );
}

describe("stasis init", () => {
  it("writes a project that installs, runs under stasis dev, and whose example task completes", async () => {
    const init = await run(process.execPath, [CLI, "init", "--json"]);
    expect(init.code, init.stderr).toBe(0);
    const result = JSON.parse(init.stdout) as { project: string; files: string[]; next: string[] };
    expect(result).toEqual({ project: "acme-tasks", files: ["stasis.config.ts", join("trigger", "example.ts"), "package.json", ".gitignore"], next: ["npm install", "npx stasis dev"] });
    expect(await readFile(join(project, ".gitignore"), "utf8")).toMatch(/^\.stasis\/$/m);
    expect(JSON.parse(await readFile(join(project, "package.json"), "utf8")).dependencies.stasis).toMatch(/^file:/);

    const again = await run(process.execPath, [CLI, "init"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/stasis\.config\.ts exists already/);

    const install = await run("npm", ["install", "--no-audit", "--no-fund"]);
    expect(install.code, install.stderr).toBe(0);

    dev = spawn(process.execPath, [CLI, "dev", "--json", "--port", "0", "--no-checkpoints"], { cwd: project, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    dev.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    dev.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const ready = await waitFor("stasis dev to print its ready line", () => {
      if (dev!.exitCode !== null) throw new Error(`stasis dev exited ${dev!.exitCode}: ${stderr}`);
      const line = stdout.split("\n")[0];
      return stdout.includes("\n") ? (JSON.parse(line) as { version: string }) : null;
    }, { timeoutMs: 90_000 });
    expect(ready.version).toMatch(/^\d{8}\.1$/);

    // The CLI in the project finds the running dev by itself (.stasis/dev.json).
    const triggered = await run(process.execPath, [CLI, "trigger", "example", "--payload", '{"name":"Ada"}', "--wait", "--json"]);
    expect(triggered.code, triggered.stderr).toBe(0);
    expect(JSON.parse(triggered.stdout) as RunView).toMatchObject({ status: "COMPLETED", output: { greeting: "Hello, Ada!" } });

    dev.kill("SIGINT");
    await waitFor("stasis dev to exit", () => dev!.exitCode !== null, { timeoutMs: 30_000 });
    await waitFor("no PostgreSQL left running", async () => (await processesMatching(join(project, ".stasis"))).length === 0, { timeoutMs: 15_000 });
  });
});
