// What the HTTP API fuzzer (test/fuzz) found, one regression each: every one of these was a 500 or an
// answer outside ApiErrorBody before. Each must be a 4xx naming the problem, and write no row.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy, eventually, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
let leased: { runId: string; leaseId: string };

beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, ["hello"]);
  const runnerId = await registerRunner(f);
  await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: {} } });
  const claimed = await eventually(() => poll(f, runnerId), (p) => p.runs.length > 0);
  leased = { runId: claimed.runs[0].runId, leaseId: claimed.runs[0].leaseId };
});

afterAll(async () => {
  await f?.close();
});

async function rows() {
  const out: Record<string, number> = {};
  for (const table of ["runs", "waitpoints", "events", "deployments", "projects", "environments"]) {
    const [row] = await f.database.db(table).count<{ count: string }[]>("* as count");
    out[table] = Number(row.count);
  }
  return out;
}

/** Sends raw text (the fixture's `call` would re-serialize it) and checks no row changed. */
async function send(method: string, url: string, payload?: string, key: string | null = f.keys.production) {
  const before = await rows();
  const res = await f.server.app.inject({
    method: method as "POST",
    url,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(payload !== undefined ? { "content-type": "application/json" } : {}) },
    ...(payload !== undefined ? { payload } : {}),
  });
  expect(await rows()).toEqual(before);
  return { status: res.statusCode, error: (res.json() as { error: { code: string; message: string; field?: string } }).error };
}

describe("input PostgreSQL cannot store is a 400 naming the field", () => {
  it("a NUL character in a payload string, a payload key, a tag, a path parameter, a query", async () => {
    for (const [url, body, field] of [
      ["/api/v1/tasks/hello/trigger", '{"payload":"a\\u0000b"}', "payload"],
      ["/api/v1/tasks/hello/trigger", '{"payload":{"k\\u0000":1}}', "payload.k\u0000"],
      ["/api/v1/tasks/hello/trigger", '{"payload":1,"options":{"tags":["x\\u0000"]}}', "options.tags.0"],
      ["/api/v1/events", '{"event":"e","payload":["ok","\\u0000"]}', "payload.1"],
    ] as const) {
      const r = await send("POST", url, body);
      expect(r.status).toBe(400);
      expect(r.error).toMatchObject({ code: "VALIDATION_FAILED", field });
      expect(r.error.message).toMatch(/NUL/);
    }
    expect(await send("GET", "/api/v1/runs/%00")).toMatchObject({ status: 400, error: { field: "id" } });
    expect(await send("GET", "/api/v1/runs?cursor=a%00")).toMatchObject({ status: 400, error: { field: "cursor" } });
  });

  it("an unpaired UTF-16 surrogate", async () => {
    const r = await send("POST", "/api/v1/tasks/hello/trigger", '{"payload":{"name":"\\ud800"}}');
    expect(r).toMatchObject({ status: 400, error: { code: "VALIDATION_FAILED", field: "payload.name" } });
    expect(r.error.message).toMatch(/surrogate/);
  });

  it("JSON nested 1,000 and 10,000 levels deep (JSON.stringify overflowed the stack)", async () => {
    for (const depth of [1000, 10_000]) {
      const r = await send("POST", "/api/v1/tasks/hello/trigger", `{"payload":${"[".repeat(depth)}${"]".repeat(depth)}}`);
      expect(r.status).toBe(400);
      expect(r.error.field).toMatch(/^payload(\.0)+$/);
      expect(r.error.message).toMatch(/nested deeper than 256 levels/);
    }
    // 200 levels are fine.
    const ok = await f.server.app.inject({ method: "POST", url: "/api/v1/events", headers: { authorization: `Bearer ${f.keys.production}`, "content-type": "application/json" }, payload: `{"event":"deep","payload":${"[".repeat(200)}${"]".repeat(200)}}` });
    expect(ok.statusCode).toBe(200);
  });

  it("a request-wait URL refuses a body with NUL before it stores the request", async () => {
    const r = await send("POST", "/api/v1/waitpoints/requests/some-token", '{"a":"\\u0000"}', null);
    expect(r).toMatchObject({ status: 400, error: { field: "body.a" } });
  });
});

describe("numbers and durations past what can be stored are 400s", () => {
  it("a delay whose due date is past year 9999", async () => {
    for (const delay of ['"99999999999d"', "9007199254740991"]) {
      const r = await send("POST", "/api/v1/tasks/hello/trigger", `{"payload":1,"options":{"delay":${delay}}}`);
      expect(r).toMatchObject({ status: 400, error: { field: "options.delay" } });
    }
  });

  it("a maxDuration past a PostgreSQL integer", async () => {
    const r = await send("POST", "/api/v1/tasks/hello/trigger", '{"payload":1,"options":{"maxDuration":9007199254740991}}');
    expect(r).toMatchObject({ status: 400, error: { code: "VALIDATION_FAILED", field: "options.maxDuration" } });
  });

  it("a wait or request token whose deadline is past year 9999", async () => {
    const url = `/api/v1/runner/runs/${leased.runId}`;
    const wait = await send("POST", `${url}/waits`, JSON.stringify({ leaseId: leased.leaseId, spec: { kind: "duration", ms: 2 ** 53 } }), RUNNER_TOKEN);
    expect(wait).toMatchObject({ status: 400, error: { field: "spec.ms" } });
    const event = await send("POST", `${url}/waits`, JSON.stringify({ leaseId: leased.leaseId, spec: { kind: "event", event: "e", timeoutMs: 2 ** 53 } }), RUNNER_TOKEN);
    expect(event).toMatchObject({ status: 400, error: { field: "spec.timeoutMs" } });
    const token = await send("POST", `${url}/request-tokens`, JSON.stringify({ leaseId: leased.leaseId, timeoutMs: 2 ** 53 }), RUNNER_TOKEN);
    expect(token).toMatchObject({ status: 400, error: { field: "timeoutMs" } });
  });
});

describe("child runs started by a run", () => {
  it("a batch with one unknown task or version starts none of its children (the first ones were left behind with a 404)", async () => {
    const body = JSON.stringify({ leaseId: leased.leaseId, wait: true, items: [{ task: "hello", payload: 1 }, { task: "hello", payload: 2, options: { version: "20991231.9" } }] });
    const r = await send("POST", `/api/v1/runner/runs/${leased.runId}/trigger`, body, RUNNER_TOKEN);
    expect(r).toMatchObject({ status: 404, error: { field: "options.version" } });
    const unknown = await send("POST", `/api/v1/runner/runs/${leased.runId}/trigger`, JSON.stringify({ leaseId: leased.leaseId, wait: false, items: [{ task: "hello", payload: 1 }, { task: "nope", payload: 2 }] }), RUNNER_TOKEN);
    expect(unknown).toMatchObject({ status: 404, error: { field: "task" } });
  });
});

describe("runner log lines", () => {
  it("a log line whose ts is not an ISO date is a 400 naming it (it was an Invalid Date and a 500)", async () => {
    const body = JSON.stringify({ leaseId: leased.leaseId, lines: [{ ts: "2026-11-30T12:00:00.000Z", level: "info", message: "ok" }, { ts: "yesterday", level: "info", message: "bad" }] });
    const r = await send("POST", `/api/v1/runner/runs/${leased.runId}/logs`, body, RUNNER_TOKEN);
    expect(r).toMatchObject({ status: 400, error: { code: "VALIDATION_FAILED", field: "lines.1.ts" } });
    const [logs] = await f.database.db("run_logs").where({ run_id: leased.runId }).count<{ count: string }[]>("* as count");
    expect(Number(logs.count)).toBe(0);
  });
});

describe("errors raised before a route runs answer in ApiErrorBody", () => {
  it("a malformed %-escape and an over-long path parameter", async () => {
    expect(await send("GET", "/api/v1/runs/%ZZ")).toMatchObject({ status: 400, error: { code: "BAD_URL" } });
    expect(await send("GET", `/api/v1/runs/${"x".repeat(600)}`)).toMatchObject({ status: 414, error: { code: "PATH_PARAMETER_TOO_LONG" } });
  });

  it("bytes Node's HTTP parser refuses", async () => {
    const address = await f.server.app.listen({ port: 0, host: "127.0.0.1" });
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(address).port), "127.0.0.1");
      let data = "";
      socket.on("data", (d) => (data += d.toString("latin1")));
      socket.on("close", () => resolve(data));
      socket.on("error", () => {});
      socket.write("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toEqual({ error: { code: "BAD_HTTP_REQUEST", message: "the request is not valid HTTP/1.1" } });
  });
});
