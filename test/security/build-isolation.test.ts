// Pushed code reaches no platform secret: a malicious repository is built by `stasis build` and by
// deployProject (the path of `stasis deploy`, `stasis dev`, the Action and the GitHub App) with the
// platform's secrets in the builder's environment and a GitHub-App-style state dir (with a private
// key file) and a runner token file on disk. The listener it POSTs to hears nothing secret.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { CLI, startTestStack, type TestStack } from "../support/stack.ts";
import { maliciousRepo, startListener, type Listener } from "./malicious-repo.ts";

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;
const mark = (name: string) => `SECRET-${name}-${randomBytes(6).toString("hex")}`;

const SECRETS: Record<string, string> = {
  STASIS_ADMIN_TOKEN: mark("admin"),
  STASIS_RUNNER_TOKEN: mark("runner"),
  STASIS_API_KEY: mark("apikey"),
  STASIS_ENCRYPTION_KEY: mark("enckey"),
  GITHUB_WEBHOOK_SECRET: mark("webhook"),
  DATABASE_URL: `postgres://stasis:${mark("dbpass")}@127.0.0.1:5432/stasis`,
  STASIS_REGISTRY_PASSWORD: mark("regpass"),
  STASIS_REGISTRY_TOKEN: mark("regtoken"),
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: mark("oidcreq"),
};
const FILE_SECRETS = { appKey: mark("appkey"), links: mark("links"), runnerToken: mark("runnerfile") };
const ALL = [...Object.values(SECRETS), ...Object.values(FILE_SECRETS)];

let work: string;
let appState: string;
let runnerDir: string;
let listener: Listener;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "stasis-isolation-"));
  // World-readable on purpose: only the build's mount namespace keeps them out of reach.
  await chmod(work, 0o755);
  appState = join(work, "github-app");
  runnerDir = join(work, "runner");
  await mkdir(join(appState, "work"), { recursive: true });
  await mkdir(runnerDir, { recursive: true });
  await writeFile(join(appState, "private-key.pem"), `-----BEGIN RSA PRIVATE KEY-----\n${FILE_SECRETS.appKey}\n-----END RSA PRIVATE KEY-----\n`, { mode: 0o644 });
  await writeFile(join(appState, "links.json"), JSON.stringify([{ repository: "acme/other", token: FILE_SECRETS.links }]), { mode: 0o644 });
  await writeFile(join(runnerDir, "runner-token"), FILE_SECRETS.runnerToken, { mode: 0o644 });
  await chmod(appState, 0o755);
  await chmod(runnerDir, 0o755);
  listener = await startListener();
});

/**
 * The CLI as a service user can run it: this clone's, or — when the clone sits under a dir others
 * cannot enter (/root is 0700) — a hard-linked copy of it in the world-readable work dir, as a
 * service user's own install would be.
 */
async function cliForServiceUser(): Promise<string> {
  const root = resolve(CLI, "..", "..");
  let reachable = true;
  for (let d = dirname(root); dirname(d) !== d; d = dirname(d)) if (((await stat(d)).mode & 0o001) === 0) reachable = false;
  if (reachable) return CLI;
  const copy = join(work, "stasis-install");
  await run("cp", ["-al", root, copy], { timeout: 120_000 });
  return join(copy, relative(root, CLI));
}

afterAll(async () => {
  await listener?.close();
  await rm(work, { recursive: true, force: true });
});

const targets = () => [join(appState, "private-key.pem"), join(appState, "links.json"), appState, join(runnerDir, "runner-token"), runnerDir, `/proc/${process.pid}/environ`, "/proc/1/environ"];

function assertNothingSecret(bodies: string[]): void {
  for (const body of bodies) for (const secret of ALL) expect(body, `the build leaked ${secret.split("-")[1]}`).not.toContain(secret);
}

async function layersText(layout: string): Promise<string> {
  let text = "";
  for (const name of await readdir(join(layout, "blobs", "sha256"))) {
    const bytes = await readFile(join(layout, "blobs", "sha256", name));
    text += bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString("latin1") : bytes.toString("latin1");
  }
  return text;
}

describe("a malicious repository's build", () => {
  it("`stasis build`: the config and task modules run, see only the allow-listed environment, and reach no secret", async () => {
    const repo = await maliciousRepo(listener.url, targets(), join(appState, "work"));
    const before = listener.received.length;
    const out = join(work, "layout-cli");
    const env = { ...process.env, ...SECRETS, GITHUB_APP_PRIVATE_KEY: join(appState, "private-key.pem"), STASIS_BUILD_HIDE_PATHS: `${appState}:${runnerDir}`, STASIS_BUILD_ENV_GREETING: "hello-build" };
    const { stdout } = await run(process.execPath, [CLI, "build", "--project", repo, "--out", out, "--json"], { env, timeout: 120_000 });
    expect(JSON.parse(stdout).tasks).toEqual(["evil"]);

    const bodies = listener.received.slice(before);
    const loot = bodies.map((b) => JSON.parse(b) as { who: string; uid: number; pids: number; env: Record<string, string>; found: Record<string, string> });
    // The code did run (config load and task indexing), so the silence below means something.
    expect(loot.map((l) => l.who).sort()).toEqual(["config", "task-module"]);
    assertNothingSecret(bodies);
    for (const l of loot) {
      expect(l.env.GREETING).toBe("hello-build");
      for (const name of Object.keys(SECRETS)) expect(l.env[name]).toBeUndefined();
      if (asRoot) expect(l.uid).toBe(65534);
      // Its own PID namespace: the builder and every other process are out of sight.
      if (asRoot) expect(l.pids).toBeLessThan(8);
    }
    expect(await layersText(out)).not.toMatch(/SECRET-/);
  });

  it.runIf(asRoot)("`stasis build` run by a non-root service user: a user namespace hides the same paths and processes", async () => {
    const repo = await maliciousRepo(listener.url, targets(), join(appState, "work"));
    const out = join(work, "layout-service-user");
    await mkdir(out);
    await run("chown", ["-R", "65534:65534", repo, out]);
    const before = listener.received.length;
    const env = { ...process.env, ...SECRETS, HOME: "/tmp", STASIS_BUILD_HIDE_PATHS: `${appState}:${runnerDir}` };
    const { stdout } = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", process.execPath, await cliForServiceUser(), "build", "--project", repo, "--out", out, "--json"], { env, timeout: 120_000, cwd: work });
    expect(JSON.parse(stdout).tasks).toEqual(["evil"]);
    const bodies = listener.received.slice(before);
    expect(bodies).toHaveLength(2);
    assertNothingSecret(bodies);
    for (const body of bodies) expect((JSON.parse(body) as { pids: number }).pids).toBeLessThan(8);
  });

  it("deployProject (stasis deploy, dev, the Action, the App): the same, with the secrets in this process's environment", async () => {
    const stack: TestStack = await startTestStack({ project: "evil" });
    const saved = { ...process.env };
    try {
      const repo = await maliciousRepo(listener.url, targets(), join(appState, "work"));
      const before = listener.received.length;
      Object.assign(process.env, SECRETS, { GITHUB_APP_PRIVATE_KEY: join(appState, "private-key.pem") });
      const deployment = await deployProject({
        projectDir: repo,
        apiUrl: stack.apiUrl,
        apiKey: stack.keys.production!,
        store: createLayoutImageStore(join(work, "layout-deploy")),
        promote: true,
        withRuntime: false,
        hidePaths: [appState, runnerDir],
      });
      expect(deployment!.tasks).toEqual(["evil"]);
      const bodies = listener.received.slice(before);
      expect(bodies).toHaveLength(2);
      assertNothingSecret(bodies);
      expect(await layersText(join(work, "layout-deploy"))).not.toMatch(/SECRET-/);
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
      await stack.stop();
    }
  });
});
