// The admin's run list across every environment; environment keys and their dashboard sessions
// never reach it, and their own lists stay their own environment's.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, deploy, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, ["hello"], { key: f.keys.production });
  await deploy(f, ["hello"], { key: f.keys.staging });
});
afterAll(async () => {
  await f?.close();
});

const trigger = async (key: string) => (await f.call("POST", "/api/v1/tasks/hello/trigger", { key, body: { payload: {} } })).body.id as string;

describe("GET /api/v1/admin/runs", () => {
  it("lists every environment's runs, newest first, each with its project and environment, and pages", async () => {
    const prod = await trigger(f.keys.production);
    const staging = await trigger(f.keys.staging);
    const res = await f.call("GET", "/api/v1/admin/runs?limit=1", { key: ADMIN_TOKEN });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.data).toEqual([expect.objectContaining({ id: staging, project: "demo", environment: "staging" })]);
    const next = await f.call("GET", `/api/v1/admin/runs?limit=1&cursor=${res.body.nextCursor}`, { key: ADMIN_TOKEN });
    expect(next.body.data).toEqual([expect.objectContaining({ id: prod, project: "demo", environment: "production" })]);
    const filtered = await f.call("GET", "/api/v1/admin/runs?status=QUEUED&task=hello&limit=200", { key: ADMIN_TOKEN });
    expect(filtered.body.data.map((r: { id: string }) => r.id)).toEqual(expect.arrayContaining([prod, staging]));
  });

  it("is refused to an environment key and to its dashboard session; their own lists hold only their runs", async () => {
    const theirs = await trigger(f.keys.staging);
    const byKey = await f.call("GET", "/api/v1/admin/runs", { key: f.keys.production });
    expect([401, 403]).toContain(byKey.status);
    expect(JSON.stringify(byKey.body)).not.toContain(theirs);

    const signIn = await f.server.app.inject({ method: "POST", url: "/api/v1/dashboard/sign-in", payload: { credential: f.keys.production } });
    const cookie = String(signIn.headers["set-cookie"]).split(";")[0];
    const bySession = await f.server.app.inject({ method: "GET", url: "/api/v1/admin/runs", headers: { cookie } });
    expect([401, 403]).toContain(bySession.statusCode);
    expect(bySession.body).not.toContain(theirs);
    // Nor the live stream of every environment's changes.
    const stream = await f.server.app.inject({ method: "GET", url: "/api/v1/admin/stream/runs", headers: { cookie } });
    expect([401, 403]).toContain(stream.statusCode);
    expect([401, 403]).toContain((await f.call("GET", "/api/v1/admin/stream/runs", { key: f.keys.production })).status);
    const own = await f.server.app.inject({ method: "GET", url: "/api/v1/runs?limit=200", headers: { cookie, "x-stasis-environment": "demo/staging" } });
    expect(own.json().data.every((r: { environment: string }) => r.environment === "production")).toBe(true);
  });
});
