// Dashboard sessions against a real server and database: a session is exactly the principal of the
// credential it signed in with, state changes need its CSRF token, expiry and revocation end it,
// one-time links work once, and the live stream carries only the session's own environment.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, deploy, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";
import { waitFor } from "./support/wait-for.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, ["hello"], { key: f.keys.production });
  await deploy(f, ["hello"], { key: f.keys.staging });
});
afterAll(async () => {
  await f?.close();
});

interface Browser {
  cookie: string;
  csrf: string;
  setCookie: string;
}

async function signIn(credential: string): Promise<Browser> {
  const res = await f.server.app.inject({ method: "POST", url: "/api/v1/dashboard/sign-in", payload: { credential } });
  expect(res.statusCode, res.body).toBe(200);
  const setCookie = String(res.headers["set-cookie"]);
  return { cookie: setCookie.split(";")[0], csrf: res.json().csrfToken, setCookie };
}

function as(browser: Browser, method: string, url: string, options: { body?: unknown; csrf?: boolean; headers?: Record<string, string> } = {}) {
  return f.server.app.inject({
    method: method as "GET",
    url,
    headers: { cookie: browser.cookie, ...(options.csrf === false ? {} : { "x-csrf-token": browser.csrf }), ...options.headers },
    ...(options.body !== undefined ? { payload: options.body as object } : {}),
  });
}

describe("dashboard sessions", () => {
  it("signs in with an environment key: an httpOnly SameSite=Strict cookie that sees that environment's runs only", async () => {
    const mine = (await f.call("POST", "/api/v1/tasks/hello/trigger", { key: f.keys.production, body: { payload: { n: 1 } } })).body.id;
    const theirs = (await f.call("POST", "/api/v1/tasks/hello/trigger", { key: f.keys.staging, body: { payload: { n: 2 } } })).body.id;
    const browser = await signIn(f.keys.production);
    expect(browser.setCookie).toMatch(/HttpOnly/i);
    expect(browser.setCookie).toMatch(/SameSite=Strict/i);
    expect(browser.setCookie).toMatch(/Expires=/i);

    const session = await as(browser, "GET", "/api/v1/dashboard/session");
    expect(session.json()).toMatchObject({ kind: "env", project: "demo", environment: "production" });
    const list = await as(browser, "GET", "/api/v1/runs");
    expect(list.statusCode).toBe(200);
    const ids = list.json().data.map((r: { id: string }) => r.id);
    expect(ids).toContain(mine);
    expect(ids).not.toContain(theirs);
    const other = await as(browser, "GET", `/api/v1/runs/${theirs}`);
    expect(other.statusCode).toBe(403);
    // Naming another environment does nothing for a key's session: only the admin may choose.
    const named = await as(browser, "GET", "/api/v1/runs", { headers: { "x-stasis-environment": "demo/staging" } });
    expect(named.json().data.map((r: { id: string }) => r.id)).not.toContain(theirs);
    // Admin routes stay admin-only.
    expect((await as(browser, "GET", "/api/v1/admin/projects")).statusCode).toBe(403);
  });

  it("refuses a state-changing request without the session's CSRF token, and changes nothing", async () => {
    const browser = await signIn(f.keys.production);
    const before = (await as(browser, "GET", "/api/v1/runs?limit=200")).json().data.length;
    const bare = await as(browser, "POST", "/api/v1/tasks/hello/trigger", { body: { payload: {} }, csrf: false });
    expect(bare.statusCode).toBe(403);
    expect(bare.json().error.code).toBe("CSRF_TOKEN_INVALID");
    const wrong = await as(browser, "POST", "/api/v1/tasks/hello/trigger", { body: { payload: {} }, headers: { "x-csrf-token": "forged" } });
    expect(wrong.statusCode).toBe(403);
    expect((await as(browser, "GET", "/api/v1/runs?limit=200")).json().data.length).toBe(before);
    const ok = await as(browser, "POST", "/api/v1/tasks/hello/trigger", { body: { payload: {} } });
    expect(ok.statusCode).toBe(200);
  });

  it("an expired session gets 401 SESSION_EXPIRED; a revoked key ends its sessions; sign-out ends one", async () => {
    const browser = await signIn(f.keys.production);
    await f.database.db("dashboard_sessions").update({ expires_at: new Date(Date.now() - 1000) }).whereRaw("kind = 'env'");
    const expired = await as(browser, "GET", "/api/v1/runs");
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.code).toBe("SESSION_EXPIRED");

    const created = await f.call("POST", "/api/v1/admin/projects/demo/environments/staging/keys", { key: ADMIN_TOKEN, body: {} });
    const keyed = await signIn(created.body.apiKey);
    expect((await as(keyed, "GET", "/api/v1/runs")).statusCode).toBe(200);
    await f.call("DELETE", `/api/v1/admin/projects/demo/environments/staging/keys/${created.body.id}`, { key: ADMIN_TOKEN });
    const revoked = await as(keyed, "GET", "/api/v1/runs");
    expect(revoked.statusCode).toBe(401);
    expect(revoked.json().error.code).toBe("SESSION_INVALID");

    const leaving = await signIn(f.keys.production);
    expect((await as(leaving, "POST", "/api/v1/dashboard/sign-out", { csrf: false })).statusCode).toBe(403);
    const out = await as(leaving, "POST", "/api/v1/dashboard/sign-out");
    expect(out.statusCode).toBe(204);
    expect(String(out.headers["set-cookie"])).toMatch(/stasis_session=;/);
    expect((await as(leaving, "GET", "/api/v1/runs")).statusCode).toBe(401);
  });

  it("refuses a wrong credential, and the runner token", async () => {
    for (const credential of ["sk_production_nope", "runner-token-0123456789abcdef", "x"]) {
      const res = await f.server.app.inject({ method: "POST", url: "/api/v1/dashboard/sign-in", payload: { credential } });
      expect(res.statusCode).toBe(401);
      expect(res.headers["set-cookie"]).toBeUndefined();
    }
  });

  it("the admin session acts in the environment it names, and only there", async () => {
    const admin = await signIn(ADMIN_TOKEN);
    expect((await as(admin, "GET", "/api/v1/dashboard/session")).json()).toMatchObject({ kind: "admin" });
    expect((await as(admin, "GET", "/api/v1/admin/projects")).statusCode).toBe(200);
    const unnamed = await as(admin, "GET", "/api/v1/runs");
    expect(unnamed.statusCode).toBe(403);
    expect(unnamed.json().error.message).toMatch(/x-stasis-environment/);
    const staging = await as(admin, "GET", "/api/v1/runs", { headers: { "x-stasis-environment": "demo/staging" } });
    expect(staging.json().data.every((r: { environment: string }) => r.environment === "staging")).toBe(true);
    const missing = await as(admin, "GET", "/api/v1/runs", { headers: { "x-stasis-environment": "demo/preview/none" } });
    expect(missing.statusCode).toBe(404);
  });

  it("a one-time login link works once, and only when the page posts it", async () => {
    const link = await f.call("POST", "/api/v1/admin/dashboard/login-links", { key: ADMIN_TOKEN });
    expect(link.status, JSON.stringify(link.body)).toBe(200);
    const url = new URL(link.body.url);
    expect(url.pathname).toBe("/login");
    const token = url.searchParams.get("token")!;
    // Fetching the link (a scanner, a preview) is only the page: it uses nothing up.
    const page = await f.server.app.inject({ method: "GET", url: url.pathname + url.search });
    expect(page.headers["set-cookie"]).toBeUndefined();
    const first = await f.server.app.inject({ method: "POST", url: "/api/v1/dashboard/login", payload: { token } });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ kind: "admin" });
    const cookie = String(first.headers["set-cookie"]).split(";")[0];
    const session = await f.server.app.inject({ method: "GET", url: "/api/v1/dashboard/session", headers: { cookie } });
    expect(session.json()).toMatchObject({ kind: "admin" });
    const again = await f.server.app.inject({ method: "POST", url: "/api/v1/dashboard/login", payload: { token } });
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe("LOGIN_LINK_INVALID");
    expect(again.headers["set-cookie"]).toBeUndefined();
    // Only the admin mints links.
    expect((await f.call("POST", "/api/v1/admin/dashboard/login-links", { key: f.keys.production })).status).toBe(403);
  });

  it("the live stream sends changes of the session's environment only", async () => {
    await f.server.app.listen({ port: 0, host: "127.0.0.1" });
    const address = f.server.app.server.address() as { port: number };
    const browser = await signIn(f.keys.production);
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${address.port}/api/v1/stream/runs`, { headers: { cookie: browser.cookie }, signal: controller.signal });
    expect(response.headers.get("content-type")).toMatch(/text\/event-stream/);
    let text = "";
    const reader = response.body!.getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        text += new TextDecoder().decode(value);
      }
    })();
    await waitFor("the stream to open", () => text.includes("connected"));
    const theirs = (await f.call("POST", "/api/v1/tasks/hello/trigger", { key: f.keys.staging, body: { payload: {} } })).body.id;
    const mine = (await f.call("POST", "/api/v1/tasks/hello/trigger", { key: f.keys.production, body: { payload: {} } })).body.id;
    await waitFor("my run's event", () => text.includes(mine));
    expect(text).toContain(`"what":"QUEUED"`);
    expect(text).not.toContain(theirs);
    controller.abort();
  });

  it("serves the dashboard page without auth, with a strict content security policy; unknown API paths stay JSON 404s", async () => {
    const page = await f.server.app.inject({ method: "GET", url: "/runs/run_x" });
    // Built by `npm run build`; a checkout that has not built it says how.
    if (page.statusCode === 200) {
      expect(page.headers["content-security-policy"]).toMatch(/default-src 'none'/);
      expect(page.body).toContain('<div id="app">');
    } else {
      expect(page.statusCode).toBe(503);
      expect(page.body).toMatch(/npm run build/);
    }
    const api = await f.server.app.inject({ method: "GET", url: "/api/v1/nope" });
    expect(api.statusCode).toBe(404);
    expect(api.json().error.code).toBe("NOT_FOUND");
    const escape = await f.server.app.inject({ method: "GET", url: "/assets/..%2f..%2fpackage.json" });
    expect(escape.statusCode).not.toBe(200);
  });
});
