// The committed bundle is what GitHub runs: it must match the sources, and it must deploy.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, HELLO_DIR, runDist, startActionStackWithProject, webhookPayload, type ActionStack } from "./support/action-harness.ts";

const run = promisify(execFile);

describe("action/dist", () => {
  it("is what action/build.mjs builds from the current sources (rebuild and compare bytes)", async () => {
    const out = await mkdtemp(join(tmpdir(), "stasis-action-dist-"));
    try {
      await run(process.execPath, [join(REPO_ROOT, "action", "build.mjs"), "--outdir", out], { cwd: REPO_ROOT });
      for (const file of ["index.js", "package.json"]) {
        const fresh = await readFile(join(out, file));
        const committed = await readFile(join(REPO_ROOT, "action", "dist", file)).catch(() => Buffer.alloc(0));
        expect(committed.equals(fresh), `action/dist/${file} is stale: run \`npm run build:action\` and commit action/dist`).toBe(true);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

describe("node action/dist/index.js against the local server (api-key, OCI layout store)", () => {
  let s: ActionStack;
  let productionKey: string;
  const repository = "acme/hello";

  beforeAll(async () => {
    ({ stack: s, productionKey } = await startActionStackWithProject(repository));
  });
  afterAll(async () => s?.close());

  const inputs = () => ({
    "api-url": s.stack.apiUrl,
    "api-key": productionKey,
    "working-directory": "examples/hello",
    registry: `oci-layout:${s.stack.dirs.images}`,
  });

  it("deploys production on a push to the default branch: outputs, summary and the deployment in the API", async () => {
    const payload = webhookPayload("push", null, repository);
    const result = await runDist({ event: "push", payload, inputs: inputs() });
    expect(result.stderr + result.stdout).not.toContain("::error");
    expect(result.code).toBe(0);
    const { outputs } = result;
    expect(outputs.environment).toBe("production");
    expect(outputs.version).toMatch(/^\d{8}\.1$/);
    expect(outputs.image).toMatch(new RegExp(`^oci-layout:${s.stack.dirs.images}.*@sha256:[a-f0-9]{64}$`));
    expect(JSON.parse(outputs.tasks)).toContain("hello");
    expect(result.summary).toContain(`deployed ${outputs.version} to \`production\``);
    expect(result.summary).toContain("| `hello` |");
    // The key never reaches the log.
    const log = (result.stdout + result.stderr).split("\n").filter((line) => !line.startsWith("::add-mask::"));
    expect(log.join("\n")).not.toContain(productionKey);
    expect(result.stdout).toContain(`::add-mask::${productionKey}`);

    const listed = await s.api(productionKey, "GET", `/api/v1/deployments/${outputs.version}`);
    expect(listed.body).toMatchObject({ id: outputs["deployment-id"], status: "DEPLOYED", promoted: true, imageRef: outputs.image });
    expect(listed.body.commit).toMatchObject({ sha: payload.after, branch: payload.repository.default_branch, repository });
  });

  it("deploys preview/pr-<n> on pull_request, archives it when closed, and the archived preview refuses runs", async () => {
    const opened = webhookPayload("pull_request", "opened", repository);
    const n = opened.pull_request.number;
    const deployed = await runDist({ event: "pull_request", payload: opened, inputs: inputs() });
    expect(deployed.code, deployed.stdout).toBe(0);
    expect(deployed.outputs.environment).toBe(`preview/pr-${n}`);
    expect(deployed.outputs.version).toMatch(/^\d{8}\.1$/);

    const closed = await runDist({ event: "pull_request", payload: webhookPayload("pull_request", "closed", repository), inputs: inputs() });
    expect(closed.code, closed.stdout).toBe(0);
    expect(closed.outputs).toEqual({ environment: `preview/pr-${n}` });
    expect(closed.summary).toContain(`archived \`preview/pr-${n}\``);

    const env = await s.stack.db("environments").where({ slug: `preview/pr-${n}` }).first();
    expect(env.archived_at).not.toBeNull();
    const key = await s.admin("POST", `/api/v1/admin/projects/hello/environments/${encodeURIComponent(`preview/pr-${n}`)}/keys`);
    const trigger = await s.api(key.body.apiKey, "POST", "/api/v1/tasks/hello/trigger", { payload: { name: "x" } });
    expect(trigger.status).toBe(409);
    expect(trigger.body.error.message).toContain("archived");

    // A second close (a re-run) is fine; a deploy to the archived preview is refused with the reason.
    expect((await runDist({ event: "pull_request", payload: webhookPayload("pull_request", "closed", repository), inputs: inputs() })).code).toBe(0);
    const again = await runDist({ event: "pull_request", payload: opened, inputs: inputs() });
    expect(again.code).toBe(1);
    expect(again.stdout).toContain(`preview/pr-${n} of hello is archived`);
  });

  it("fails with an actionable message: a bad input, or an api-key for production asked for staging", async () => {
    const bad = await runDist({ event: "push", payload: webhookPayload("push", null, repository), inputs: { ...inputs(), "api-url": "not a url" } });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("input api-url: must be the Stasis server's URL");

    const staging = await runDist({ event: "push", payload: webhookPayload("push", null, repository), inputs: { ...inputs(), environment: "staging" } });
    expect(staging.code).toBe(1);
    expect(staging.stdout).toContain("this API key belongs to hello/production");
  });
});
