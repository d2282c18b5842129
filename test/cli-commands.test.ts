// The `stasis` command as a user runs it (a child process, STASIS_API_URL/STASIS_API_KEY), against the
// real stack: trigger, runs get|list|cancel|replay|logs, exit codes and --json shapes.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunView } from "../schemas/index.ts";
import { runCli, type CliResult } from "./support/cli.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

const FIXTURE = resolve(import.meta.dirname, "fixtures/basic");
let stack: TestStack;
let cwd: string; // no .stasis/dev.json above it: the CLI must use the env

beforeAll(async () => {
  stack = await startTestStack({ project: "basic", runners: 1, checkpoints: false });
  await stack.deploy(FIXTURE);
  cwd = await mkdtemp(join(tmpdir(), "stasis-cli-"));
});

afterAll(async () => {
  await stack?.stop();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

function stasis(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(args, { cwd, env: { STASIS_API_URL: stack.apiUrl, STASIS_API_KEY: stack.keys.development, ...env } });
}

/** stdout is exactly one JSON object on one line. */
function oneJson<T>(result: CliResult): T {
  const lines = result.stdout.split("\n").filter(Boolean);
  expect(lines, result.stderr).toHaveLength(1);
  return JSON.parse(lines[0]) as T;
}

describe("stasis trigger", () => {
  let completed: RunView;

  it("--wait --json prints the finished run as one JSON object", async () => {
    const result = await stasis(["trigger", "hello", "--payload", '{"name":"x"}', "--wait", "--json"]);
    expect(result.code, result.stderr).toBe(0);
    completed = oneJson<RunView>(result);
    expect(completed).toMatchObject({ id: expect.any(String), status: "COMPLETED", output: { greeting: "Hello, x!" }, error: null, attempts: 1, version: expect.stringMatching(/^\d{8}\.1$/) });
  });

  it("without --wait prints the run as it is now", async () => {
    const run = oneJson<RunView>(await stasis(["trigger", "hello", "--payload", '{"name":"y"}', "--tag", "cli", "--idempotency-key", "cli-1", "--json"]));
    expect(run).toMatchObject({ taskId: "hello", tags: ["cli"], idempotencyKey: "cli-1" });
    const again = await stasis(["trigger", "hello", "--payload", '{"name":"z"}', "--idempotency-key", "cli-1"]);
    expect(again.stdout).toMatch(new RegExp(`${run.id} \\(existing run for that idempotency key\\)`));
  });

  it("a run that fails exits 3 with the error", async () => {
    const result = await stasis(["trigger", "abort", "--wait", "--json"]);
    expect(result.code).toBe(3);
    expect(oneJson<RunView>(result)).toMatchObject({ status: "FAILED", error: { name: "AbortTaskRunError" } });
  });

  it("--wait that times out on an unfinished run exits 3 with one line saying the run goes on", async () => {
    const result = await stasis(["trigger", "busy", "--payload", '{"ms":3000}', "--wait", "--timeout", "300"]);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/^stasis: run \S+ is still (QUEUED|EXECUTING) after 300 ms; it goes on: stasis runs get \S+$/m);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it("--version prints the package version", async () => {
    const result = await stasis(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("a bad --payload exits 2 and says which flag", async () => {
    const before = await stack.database.db("runs").count<{ count: string }[]>("* as count");
    const result = await stasis(["trigger", "hello", "--payload", "{name: x}"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--payload is not valid JSON/);
    expect(result.stdout).toBe("");
    expect(await stack.database.db("runs").count<{ count: string }[]>("* as count")).toEqual(before);
  });

  it("a runner with a bad --warm-processes exits 2 naming the flag and the value", async () => {
    for (const bad of ["-1", "1.5", "many"]) {
      const result = await stasis(["runner", "--warm-processes", bad, "--work-dir", join(tmpdir(), "stasis-never-made")]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(`--warm-processes must be a whole number >= 0 or slots, not "${bad}"`);
    }
  });

  it("a runner with a bad --local-checkpoints or --keep-stopped exits 2 naming the flag and the value", async () => {
    for (const flag of ["--local-checkpoints", "--keep-stopped"]) {
      for (const bad of ["-1", "lots", ""]) {
        const result = await stasis(["runner", flag, bad, "--work-dir", join(tmpdir(), "stasis-never-made")]);
        expect(result.code, result.stderr).toBe(2);
        expect(result.stderr).toContain(`${flag} must be a number of MiB >= 0, not ${JSON.stringify(bad)}`);
      }
    }
    const runc = await stasis(["runner", "--keep-stopped", "64", "--workload", "runc", "--work-dir", join(tmpdir(), "stasis-never-made")]);
    expect(runc.code, runc.stderr).toBe(2);
    expect(runc.stderr).toContain("--keep-stopped needs --workload process");
  });

  it("an unknown task exits 1 naming it; a wrong key exits 2; no API at all exits 2", async () => {
    const unknown = await stasis(["trigger", "nope", "--json"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/task nope does not exist/);
    const wrongKey = await stasis(["runs", "list"], { STASIS_API_KEY: "sk_development_wrong-wrong-wrong-wrong" });
    expect(wrongKey.code).toBe(2);
    const nothing = await stasis(["runs", "list"], { STASIS_API_URL: undefined, STASIS_API_KEY: undefined });
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/STASIS_API_URL/);
  });

  describe("stasis runs", () => {
    it("get and list --json", async () => {
      const got = oneJson<RunView>(await stasis(["runs", "get", completed.id, "--json"]));
      expect(got).toMatchObject({ id: completed.id, status: "COMPLETED", output: completed.output, attempts: 1, version: completed.version });
      const list = oneJson<{ data: RunView[]; nextCursor: string | null }>(await stasis(["runs", "list", "--task", "hello", "--status", "COMPLETED", "--json"]));
      expect(list.data.map((r) => r.id)).toContain(completed.id);
      expect(list.data.every((r) => r.taskId === "hello" && r.status === "COMPLETED")).toBe(true);
      const human = await stasis(["runs", "list", "--tag", "cli"]);
      expect(human.stdout).toMatch(/^ID\s+TASK\s+STATUS/);
    });

    it("cancel --json and replay --json", async () => {
      const started = oneJson<RunView>(await stasis(["trigger", "busy", "--payload", '{"ms":30000}', "--json"]));
      await stack.waitForRun(started.id, (r) => r.status === "EXECUTING", "busy to execute");
      const canceled = oneJson<RunView>(await stasis(["runs", "cancel", started.id, "--json"]));
      expect(canceled).toMatchObject({ id: started.id, status: "CANCELED" });

      const replay = oneJson<{ id: string; isCached: boolean }>(await stasis(["runs", "replay", completed.id, "--json"]));
      expect(replay.id).not.toBe(completed.id);
      const run = await stack.waitForRun(replay.id, (r) => r.status === "COMPLETED", "the replay to complete");
      expect(run).toMatchObject({ replayOf: completed.id, payload: { name: "x" }, version: completed.version });
    });

    it("logs prints lines with levels; --follow ends when the run finishes", async () => {
      const logs = await stasis(["runs", "logs", completed.id]);
      expect(logs.code).toBe(0);
      expect(logs.stdout).toMatch(/^\S+Z INFO +hello x$/m);
      expect(logs.stdout).toMatch(/^\S+Z WARN +a structured line$/m);

      const started = oneJson<RunView>(await stasis(["trigger", "busy", "--payload", '{"ms":1500}', "--json"]));
      const followed = await stasis(["runs", "logs", started.id, "--follow", "--json"]);
      expect(followed.code).toBe(0);
      const lines = followed.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { level: string; message: string; ts: string });
      expect(lines.map((l) => l.message)).toContain("attempt 1: tick 10");
      expect((await stack.api<RunView>("GET", `/api/v1/runs/${started.id}`)).status).toBe("COMPLETED");
    });
  });
});
