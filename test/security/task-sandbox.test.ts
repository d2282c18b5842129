// Task processes of `stasis runner` (as root) run as their environment's own unprivileged user in a
// sandbox: a real task, deployed and run through a real runner process, tries to reach what it must
// not — the runner's token and environment, its work files, the checkpoint store, other projects'
// images, other environments' files, the embedded PostgreSQL's files — and to kill the runner.
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { DEFAULT_TASK_UID_BASE } from "../../runner/index.ts";
import type { RunView } from "../../schemas/index.ts";
import { checkpointFiles, runLogs, waitForFinal, waitForSuspended } from "../support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, type RunnerProcess, type TestStack } from "../support/stack.ts";

const FIXTURE = resolve(REPO_ROOT, "test/fixtures/sandbox");
const asRoot = process.getuid?.() === 0;

type Attempt = { ok: false; code: string } | { ok: true; entries?: string[]; bytes?: number };
/** Nothing was read: an error, or an empty (hidden) dir. */
const gotNothing = (a: Attempt) => !a.ok || (a.entries !== undefined && a.entries.length === 0);

let stack: TestStack;
let runner: RunnerProcess;
let scratch: string;
let shared: string;
let etcStasis: string;

async function trigger(task: string, payload: unknown, environment = "development"): Promise<string> {
  const { id } = await stack.api<{ id: string }>("POST", `/api/v1/tasks/${task}/trigger`, { payload }, environment);
  return id;
}

async function environmentNumber(slug: string): Promise<number> {
  const row = await stack.local.db("environments as e").join("projects as p", "p.id", "e.project_id").where({ "p.slug": "sandbox", "e.slug": slug }).first("e.number");
  return Number(row.number);
}

beforeAll(async () => {
  if (!asRoot) return;
  scratch = await mkdtemp(join(tmpdir(), "stasis-task-sandbox-"));
  // A dir the operator shares with tasks (STASIS_TASK_SHARED_DIRS): sticky and world-writable, like /tmp.
  shared = join(scratch, "shared");
  await mkdir(shared);
  await chmod(shared, 0o1777);
  // Stands in for /etc/stasis (a shared machine's real one is not ours to create): hidden the same way.
  etcStasis = join(scratch, "etc-stasis");
  await mkdir(etcStasis, { recursive: true });
  await writeFile(join(etcStasis, "runner.env"), "STASIS_RUNNER_TOKEN=from-the-config-file\n", { mode: 0o600 });
  stack = await startTestStack({ project: "sandbox", runners: 0, suspendThresholdMs: 1000 });
  await stack.deploy(FIXTURE);
  await stack.deploy(FIXTURE, { environment: "staging" });
  runner = await stack.startRunnerProcess({ name: "sandboxed", suspendThresholdMs: 1000, env: { STASIS_TASK_SHARED_DIRS: shared, STASIS_TASK_HIDE_PATHS: etcStasis, STASIS_TASK_SANDBOX: "on" } });
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe.skipIf(!asRoot)("a task process under `stasis runner` (as root)", () => {
  it("runs as its environment's own user and reaches none of the runner's secrets, files or processes", async () => {
    // Another project's image in the runner's image cache (a run of it unpacked it there).
    const other = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(stack.apiUrl, stack.local.adminToken, "POST", "/api/v1/admin/projects", { slug: "basic" });
    const basicKey = other.environments.find((e) => e.environment === "development")!.apiKey;
    await deployProject({ projectDir: join(REPO_ROOT, "test/fixtures/basic"), apiUrl: stack.apiUrl, apiKey: basicKey, store: createLayoutImageStore(join(scratch, "basic-images")), promote: true, withRuntime: false });
    const basicRun = await callStasisApi<{ id: string }>(stack.apiUrl, basicKey, "POST", "/api/v1/tasks/busy/trigger", { payload: { ms: 10 } });
    await waitForRunAs(basicKey, basicRun.id);

    // A suspended run: its checkpoint sits in the store.
    const frozen = await trigger("frozen-user", { seconds: 600, shared, mine: "frozen", theirs: "nobody" });
    await waitForSuspended(stack, frozen);
    const [checkpoint] = await checkpointFiles(stack);
    expect(checkpoint).toBeDefined();

    const cacheEntries = await readdir(stack.local.dirs.imageCache, { recursive: true });
    const manifests = cacheEntries.map((p) => join(stack.local.dirs.imageCache, p)).filter((p) => p.endsWith("/app/stasis-manifest.json"));
    let otherBundle: string | undefined;
    for (const m of manifests) if ((JSON.parse(await readFile(m, "utf8")) as { project?: string }).project === "basic") otherBundle = m;
    const runnerWork = join(stack.stateDir, "runner-1");
    // Embedded PostgreSQL passwords: relocated ones under /var/lib/stasis, and this test run's own (global setup, under /tmp).
    const pgPasswords = [
      ...(await readdir("/var/lib/stasis/pgdata").catch(() => [] as string[])).map((d) => `/var/lib/stasis/pgdata/${d}/password`),
      ...(await readdir(tmpdir())).filter((d) => d.startsWith("stasis-test-pg-")).map((d) => join(tmpdir(), d, "data.password")),
    ];
    const runnerPid = runner.child.pid!;
    const read: Record<string, string> = {
      runnerEnviron: `/proc/${runnerPid}/environ`,
      runnerCmdline: `/proc/${runnerPid}/cmdline`,
      etcStasisDir: etcStasis,
      etcStasisFile: join(etcStasis, "runner.env"),
      checkpointStore: stack.local.dirs.checkpoints,
      checkpointFile: checkpoint!,
      imageCache: stack.local.dirs.imageCache,
      imageStore: stack.local.dirs.images,
      runnerWorkDir: runnerWork,
      runnerPidFiles: join(runnerWork, "pids"),
      stateDir: stack.stateDir,
      varLibStasis: "/var/lib/stasis",
      varLibStasisPgdata: "/var/lib/stasis/pgdata",
      ...(otherBundle ? { otherProjectsImage: otherBundle } : {}),
      ...Object.fromEntries(pgPasswords.slice(0, 4).map((p, i) => [`pgPassword${i}`, p])),
    };
    const id = await trigger("probe", { read, kill: [runnerPid, process.pid] });
    const run = await waitForFinal(stack, id);
    const out = run.output as { uid: number; cwd: string; gid: number; groups: number[]; capEff: string; noNewPrivs: string; home: string; runnerToken: string | null; reads: Record<string, Attempt>; kills: Attempt[]; writeImage: Attempt };
    // What it got, for whoever reads the test's output.
    console.log(JSON.stringify({ uid: out.uid, reads: out.reads, kills: out.kills, writeImage: out.writeImage }));

    expect(otherBundle, "another project's image in the cache").toBeDefined();
    expect(out.uid).toBe(DEFAULT_TASK_UID_BASE + (await environmentNumber("development")));
    expect(out.gid).toBe(out.uid);
    expect(out.groups.filter((g) => g !== out.gid)).toEqual([]);
    expect(out.capEff).toBe("0000000000000000");
    expect(out.noNewPrivs).toBe("1");
    expect(out.home).toBe("/tmp");
    expect(out.runnerToken).toBeNull();
    // A dir on the way to the task's own app dir lists only the next step of that way (mount points).
    const wayToOwnApp = (dir: string, entries: string[]) => entries.every((e) => out.cwd.startsWith(`${join(dir, e)}/`) || out.cwd === join(dir, e));
    for (const [name, attempt] of Object.entries(out.reads)) {
      const harmless = gotNothing(attempt) || (attempt.ok && attempt.entries !== undefined && wayToOwnApp(read[name]!, attempt.entries));
      expect(harmless, `${name} (${read[name]}): ${JSON.stringify(attempt)}`).toBe(true);
      if (!attempt.ok) expect(["ENOENT", "EACCES", "EPERM"], name).toContain(attempt.code);
    }
    // The runner (and this test) are outside the task's PID namespace: no signal reaches them.
    for (const kill of out.kills) expect(kill).toMatchObject({ ok: false, code: expect.stringMatching(/^(ESRCH|EPERM)$/) });
    expect(runner.child.exitCode).toBeNull();
    expect(out.writeImage).toMatchObject({ ok: false, code: expect.stringMatching(/^(EACCES|EROFS|EPERM)$/) });
    await stack.api("POST", `/api/v1/runs/${frozen}/cancel`);
  });

  it("a run frozen and restored keeps its user and its /tmp; two environments' runs have different users and cannot read each other's files", async () => {
    const dev = await trigger("frozen-user", { seconds: 6, shared, mine: "development.txt", theirs: "staging.txt" });
    const staging = await trigger("frozen-user", { seconds: 6, shared, mine: "staging.txt", theirs: "development.txt" }, "staging");
    // Frozen: the run's process was dumped and is gone until the wait is over.
    await stack.waitForRun(dev, (r) => r.status === "SUSPENDED", "the development run to be frozen").catch(async (error: Error) => {
      const logs = await runLogs(stack, dev);
      throw new Error(`${error.message}: ${JSON.stringify(await stack.api("GET", `/api/v1/runs/${dev}`))}\n${logs.map((l) => `${l.level} ${l.message}`).join("\n")}\n${runner.log().slice(-3000)}`);
    });
    const [devRun, stagingRun] = await Promise.all([waitForFinal(stack, dev), waitForFinalIn("staging", staging)]);
    type Out = { before: number; after: number; kept: string; theirs: Attempt; mine: Attempt };
    const devOut = devRun.output as Out;
    const stagingOut = stagingRun.output as Out;
    console.log(JSON.stringify({ development: devOut, staging: stagingOut }));
    // Restored, not started again: one attempt.
    expect(devRun.attempts).toBe(1);
    expect(devOut.before).toBe(DEFAULT_TASK_UID_BASE + (await environmentNumber("development")));
    expect(devOut.after).toBe(devOut.before);
    expect(devOut.kept).toBe(`written by ${devOut.before} before the wait`);
    expect(stagingOut.before).toBe(DEFAULT_TASK_UID_BASE + (await environmentNumber("staging")));
    expect(stagingOut.after).toBe(stagingOut.before);
    expect(stagingOut.before).not.toBe(devOut.before);
    expect(devOut.mine).toMatchObject({ ok: true });
    expect(devOut.theirs).toEqual({ ok: false, code: "EACCES" });
    expect(stagingOut.theirs).toEqual({ ok: false, code: "EACCES" });
  });
});

async function waitForRunAs(apiKey: string, id: string): Promise<RunView> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    const run = await callStasisApi<RunView>(stack.apiUrl, apiKey, "GET", `/api/v1/runs/${id}`);
    if (["COMPLETED", "FAILED", "CANCELED"].includes(run.status)) {
      if (run.status !== "COMPLETED") throw new Error(`run ${id} ended ${run.status}: ${JSON.stringify(run.error)}`);
      return run;
    }
  }
  throw new Error(`run ${id} did not finish in 60 s`);
}

async function waitForFinalIn(environment: string, id: string): Promise<RunView> {
  for (const deadline = Date.now() + 90_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    const view = await stack.api<RunView>("GET", `/api/v1/runs/${id}`, undefined, environment);
    if (["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT"].includes(view.status)) {
      if (view.status !== "COMPLETED") throw new Error(`run ${id} ended ${view.status}: ${JSON.stringify(view.error)}`);
      return view;
    }
  }
  throw new Error(`run ${id} did not finish in 90 s`);
}
