// A preview's version promoted to production as is: a new production version with the same image
// digest and manifest (no rebuild), its provenance shown; through the API and `stasis deployments copy`.
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.ts";
import { ADMIN_TOKEN, deploy, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
let previewKey: string;
beforeAll(async () => {
  f = await startServerFixture();
  previewKey = (await f.call("POST", "/api/v1/admin/projects/demo/environments", { key: ADMIN_TOKEN, body: { slug: "preview/pr-7" } })).body.apiKey;
  await deploy(f, ["hello", "bye"], { key: previewKey });
  await deploy(f, ["hello"], { key: f.keys.production });
});
afterAll(async () => {
  await f?.close();
});

const copy = (body: unknown, key: string | null = ADMIN_TOKEN) => f.call("POST", "/api/v1/admin/projects/demo/deployments/copy", { key, body });

describe("copying a version to another environment", () => {
  it("makes a new version there with the same digest and manifest, promoted when asked, with its provenance", async () => {
    const preview = (await f.call("GET", "/api/v1/deployments", { key: previewKey })).body.data[0];
    const before = (await f.call("GET", "/api/v1/deployments")).body.data;
    const res = await copy({ version: preview.version, from: "preview/pr-7", to: "production", promote: true });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ environment: "production", imageDigest: preview.imageDigest, imageRef: preview.imageRef, tasks: preview.tasks, contentHash: preview.contentHash, promoted: true, copiedFrom: { environment: "preview/pr-7", version: preview.version } });
    expect(res.body.version).not.toBe(before[0].version);
    const listed = (await f.call("GET", "/api/v1/deployments")).body.data;
    expect(listed.find((d: { promoted: boolean }) => d.promoted).version).toBe(res.body.version);
    // The copy runs the preview's tasks: a task only the preview had can be triggered in production now.
    expect((await f.call("POST", "/api/v1/tasks/bye/trigger", { body: { payload: {} } })).status).toBe(200);
  });

  it("refuses an environment key, a missing version, the same environment and an archived target, changing nothing", async () => {
    const count = async () => (await f.call("GET", "/api/v1/deployments", { key: f.keys.staging })).body.data.length;
    const before = await count();
    const preview = (await f.call("GET", "/api/v1/deployments", { key: previewKey })).body.data[0];
    expect((await copy({ version: preview.version, from: "preview/pr-7", to: "staging" }, previewKey)).status).toBe(403);
    expect((await copy({ version: "20000101.9", from: "preview/pr-7", to: "staging" })).status).toBe(404);
    const same = await copy({ version: preview.version, from: "preview/pr-7", to: "preview/pr-7" });
    expect(same.status).toBe(400);
    expect(same.body.error.message).toMatch(/same environment/);
    await f.call("POST", "/api/v1/admin/projects/demo/environments", { key: ADMIN_TOKEN, body: { slug: "preview/pr-8" } });
    await f.call("POST", "/api/v1/admin/projects/demo/environments/preview%2Fpr-8/archive", { key: ADMIN_TOKEN });
    const archived = await copy({ version: preview.version, from: "preview/pr-7", to: "preview/pr-8" });
    expect(archived.status, JSON.stringify(archived.body)).toBe(409);
    expect(await count()).toBe(before);
  });

  it("`stasis deployments copy <version> --from preview/pr-7 --to staging` does the same from the CLI", async () => {
    await f.server.app.listen({ port: 0, host: "127.0.0.1" });
    const apiUrl = `http://127.0.0.1:${(f.server.app.server.address() as { port: number }).port}`;
    const preview = (await f.call("GET", "/api/v1/deployments", { key: previewKey })).body.data[0];
    const result = await runCli(["deployments", "copy", preview.version, "--from", "preview/pr-7", "--to", "staging", "--project", "demo", "--json"], {
      cwd: tmpdir(),
      env: { STASIS_API_URL: apiUrl, STASIS_ADMIN_TOKEN: ADMIN_TOKEN, STASIS_API_KEY: undefined },
    });
    expect(result.code, result.stderr).toBe(0);
    const copied = JSON.parse(result.stdout);
    expect(copied).toMatchObject({ environment: "staging", imageDigest: preview.imageDigest, promoted: false, copiedFrom: { environment: "preview/pr-7", version: preview.version } });
  });
});
