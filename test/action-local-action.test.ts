// The action's sources run by GitHub's own local runner emulator, @github/local-action (it stubs
// @actions/core and calls run() from action/src/main.ts), against the real local server.
import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, inputEnv, runnerFiles, startActionStackWithProject, webhookPayload, type ActionStack } from "./support/action-harness.ts";

const run = promisify(execFile);
const LOCAL_ACTION = join(REPO_ROOT, "node_modules", "@github", "local-action", "bin", "local-action.js");

describe("@github/local-action run . action/src/main.ts <dotenv>", () => {
  let s: ActionStack;
  let productionKey: string;
  const repository = "acme/hello";

  beforeAll(async () => {
    ({ stack: s, productionKey } = await startActionStackWithProject(repository));
  });
  afterAll(async () => s?.close());

  it("deploys a pull request's preview environment and writes the job summary", async () => {
    const payload = webhookPayload("pull_request", "opened", repository);
    const files = await runnerFiles(payload);
    const env = {
      ...inputEnv({ "api-url": s.stack.apiUrl, "api-key": productionKey, "working-directory": "examples/hello", registry: `oci-layout:${s.stack.dirs.images}` }),
      GITHUB_EVENT_NAME: "pull_request",
      GITHUB_EVENT_PATH: files.event,
      GITHUB_STEP_SUMMARY: files.summary,
      GITHUB_WORKSPACE: REPO_ROOT,
      GITHUB_REPOSITORY: repository,
    };
    const dotenv = join(files.dir, ".env");
    await writeFile(dotenv, Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n");
    try {
      const { stdout } = await run(process.execPath, [LOCAL_ACTION, "run", REPO_ROOT, "action/src/main.ts", dotenv], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: "1" },
        maxBuffer: 16 * 1024 * 1024,
      });
      const plain = stdout.replace(/\x1b\[[0-9;]*m/g, "");
      const outputs = Object.fromEntries([...plain.matchAll(/^::set-output name=([\w-]+)::(.*)$/gm)].map((m) => [m[1], m[2]]));
      // local-action's own report: it stubbed @actions/core and collected the outputs itself.
      expect(plain).toMatch(/Running Action[\s\S]*Action Outputs/);
      expect(plain).not.toMatch(/::error::|Stasis deploy failed/);
      expect(outputs.environment).toBe(`preview/pr-${payload.pull_request.number}`);
      expect(outputs.version).toMatch(/^\d{8}\.1$/);
      expect(JSON.parse(outputs.tasks)).toEqual(expect.arrayContaining(["hello", "hello-later"]));
      const summary = await readFile(files.summary, "utf8");
      expect(summary).toContain(`deployed ${outputs.version} to \`preview/pr-${payload.pull_request.number}\``);
      const row = await s.stack.db("deployments").where({ id: outputs["deployment-id"] }).first();
      expect(row).toMatchObject({ status: "DEPLOYED", image_ref: outputs.image });
      expect(row.commit).toMatchObject({ sha: payload.pull_request.head.sha, branch: payload.pull_request.head.ref });
    } finally {
      await rm(files.dir, { recursive: true, force: true });
    }
  });
});
