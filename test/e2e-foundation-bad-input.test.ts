// Bad input at the edges: each gets a clear error naming the problem, and leaves no row behind.
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_PAYLOAD_BYTES } from "../schemas/index.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

const FIXTURE = resolve(import.meta.dirname, "fixtures/basic");
let stack: TestStack;
let devRunId: string;

beforeAll(async () => {
  stack = await startTestStack({ project: "basic", runners: 0 });
  await stack.deploy(FIXTURE);
  devRunId = (await stack.api<{ id: string }>("POST", "/api/v1/tasks/hello/trigger", { payload: { name: "mine" } })).id;
});

afterAll(async () => {
  await stack?.stop();
});

async function raw(path: string, init: { method?: string; key?: string | null; body?: string } = {}) {
  const key = init.key === undefined ? stack.keys.development : init.key;
  const response = await fetch(`${stack.apiUrl}${path}`, {
    method: init.method ?? "POST",
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.body !== undefined ? { "content-type": "application/json" } : {}) },
    body: init.body,
  });
  return { status: response.status, body: (await response.json()) as { error: { code: string; message: string; field?: string } } };
}

async function count(table: string): Promise<number> {
  const [row] = await stack.database.db(table).count<{ count: string }[]>("* as count");
  return Number(row.count);
}

/** Runs `attempt` and checks it added no run and no deployment. */
async function leavesNoRow<T>(attempt: () => Promise<T>): Promise<T> {
  const before = { runs: await count("runs"), deployments: await count("deployments") };
  const result = await attempt();
  expect({ runs: await count("runs"), deployments: await count("deployments") }).toEqual(before);
  return result;
}

describe("trigger with bad input", () => {
  it("an unknown task id is a 404 naming the task", async () => {
    const r = await leavesNoRow(() => raw("/api/v1/tasks/no-such-task/trigger", { body: JSON.stringify({ payload: {} }) }));
    expect(r.status).toBe(404);
    expect(r.body.error.message).toMatch(/task no-such-task does not exist/);
    expect(r.body.error.field).toBe("task");
  });

  it("a body that is not JSON is a 400 that says so", async () => {
    const r = await leavesNoRow(() => raw("/api/v1/tasks/hello/trigger", { body: '{"payload": {name: "x"' }));
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/JSON/i);
  });

  it("a body without a payload field names the field", async () => {
    const r = await leavesNoRow(() => raw("/api/v1/tasks/hello/trigger", { body: JSON.stringify({ payload: 1, options: { delay: "soon" } }) }));
    expect(r.status).toBe(400);
    expect(r.body.error.field).toBe("options.delay");
  });

  it("a payload over 3 MiB is a 413 with the limit", async () => {
    const big = JSON.stringify({ payload: { blob: "x".repeat(MAX_PAYLOAD_BYTES) } });
    const r = await leavesNoRow(() => raw("/api/v1/tasks/hello/trigger", { body: big }));
    expect(r.status).toBe(413);
    expect(r.body.error.message).toMatch(/3 MiB/);
  });

  it("a payload just over the limit inside an accepted body is refused too", async () => {
    // The body limit leaves room around the payload; the payload itself is measured as JSON.
    const big = JSON.stringify({ payload: "x".repeat(MAX_PAYLOAD_BYTES) });
    const r = await leavesNoRow(() => raw("/api/v1/tasks/hello/trigger", { body: big }));
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ code: "PAYLOAD_TOO_LARGE", field: "payload" });
  });
});

describe("credentials", () => {
  it("a missing API key is a 401", async () => {
    const r = await leavesNoRow(() => raw("/api/v1/tasks/hello/trigger", { key: null, body: JSON.stringify({ payload: {} }) }));
    expect(r.status).toBe(401);
    expect(r.body.error.message).toMatch(/api key|authorization/i);
  });

  it("a wrong API key is a 401", async () => {
    const r = await leavesNoRow(() => raw("/api/v1/tasks/hello/trigger", { key: "sk_development_not-a-real-key-0000000000", body: JSON.stringify({ payload: {} }) }));
    expect(r.status).toBe(401);
  });

  it("a key of another environment cannot read, cancel or replay this environment's runs", async () => {
    const production = stack.keys.production;
    for (const [method, path] of [["GET", `/api/v1/runs/${devRunId}`], ["POST", `/api/v1/runs/${devRunId}/cancel`], ["POST", `/api/v1/runs/${devRunId}/replay`], ["GET", `/api/v1/runs/${devRunId}/logs`]] as const) {
      const r = await leavesNoRow(() => raw(path, { method, key: production, ...(method === "POST" ? { body: "{}" } : {}) }));
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.message).toMatch(/environment/);
    }
    const view = await raw(`/api/v1/runs/${devRunId}`, { method: "GET" });
    expect(view.status).toBe(200);
    expect((view.body as unknown as { status: string }).status).toBe("QUEUED"); // not canceled
  });

  it("a runner token is not an API key", async () => {
    const r = await leavesNoRow(() => raw("/api/v1/tasks/hello/trigger", { key: stack.local.runnerToken, body: JSON.stringify({ payload: {} }) }));
    expect([401, 403]).toContain(r.status);
  });
});

describe("malformed stasis.config.ts", () => {
  it("fails the deploy naming the field, and registers nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stasis-badcfg-"));
    try {
      await cp(FIXTURE, dir, { recursive: true });
      await writeFile(join(dir, "stasis.config.ts"), 'export default { project: "basic", retries: { default: { maxAttempts: "three" } } };\n');
      const error = await leavesNoRow(() => stack.deploy(dir).then(() => null, (e: Error) => e));
      expect(error?.message).toMatch(/stasis\.config\.ts/);
      expect(error?.message).toMatch(/retries\.default\.maxAttempts/);

      await writeFile(join(dir, "stasis.config.ts"), "export default { project: 42 };\n");
      const second = await leavesNoRow(() => stack.deploy(dir).then(() => null, (e: Error) => e));
      expect(second?.message).toMatch(/project/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
