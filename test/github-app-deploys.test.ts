// The GitHub App end to end: real webhook payloads (@octokit/webhooks-examples, edited only for
// shas and the fork's name), signed and POSTed over HTTP; a real git repository served over smart
// HTTP; real builds pushed to a real docker-registry; deployments in the real database. Only
// GitHub's REST API is replaced, by test/support/github-stand-in.ts, which stands in for the public
// api.github.com the tests cannot reach.
import { execFileSync } from "node:child_process";
import { createHash, createHmac, generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callStasisApi, createLayoutImageStore, deployProject, type ImageStore } from "../builder/index.ts";
import { startLocalStack, type LocalStack } from "../cli/local-stack.ts";
import { startGithubApp, type GithubAppConfig, type GithubAppServer } from "../github-app/index.ts";
import { createKeyring, parseMasterKey } from "../server/index.ts";
import { masterKeyId, rotateMasterKey, runToEnd, type RotatedStack } from "./support/envvar-runs.ts";
import { createTestDatabase, type TestDatabase } from "./support/db.ts";
import { startGitServer, type GitServer } from "./support/git-server.ts";
import { startGithubStandIn, type GithubStandIn } from "./support/github-stand-in.ts";
import { startRegistry, type TestRegistry } from "./support/registry.ts";

const HELLO = resolve(import.meta.dirname, "..", "examples", "hello");
const SECRET = "test-webhook-secret-1234";
const APP_ID = "4242";
const REPO = "Codertocat/Hello-World";
// The master key the stack starts with, and the one `stasis admin rotate-key` moves to.
const KEY_A = randomBytes(32).toString("base64");
const KEY_B = randomBytes(32).toString("base64");
const examples = createRequire(import.meta.url)("@octokit/webhooks-examples") as Array<{ name: string; examples: Array<Record<string, any>> }>;

let database: TestDatabase;
let stack: LocalStack;
let registry: TestRegistry;
let github: GithubStandIn;
let gitServer: GitServer;
let app: GithubAppServer;
let work: string;
let checkout: string;
let gitRoot: string;
/** Set to make the git server refuse every clone (a handling that fails). */
let refuseClones = false;
let rotated: RotatedStack | null = null;

function example(event: string, match: (p: Record<string, any>) => boolean): Record<string, any> {
  const found = examples.find((e) => e.name === event)!.examples.find(match);
  if (!found) throw new Error(`no ${event} example`);
  return structuredClone(found);
}

const pushPayload = (sha: string) => {
  const payload = example("push", (p) => p.ref === "refs/heads/master" && !p.deleted);
  payload.after = sha;
  payload.head_commit.id = sha;
  return payload;
};

const pullPayload = (action: string, number: number, sha: string) => {
  const payload = example("pull_request", (p) => p.action === action);
  payload.number = number;
  payload.pull_request.number = number;
  payload.pull_request.head.sha = sha;
  return payload;
};

async function send(event: string, payload: unknown, options: { delivery?: string; secret?: string; tamper?: boolean } = {}) {
  const body = JSON.stringify(payload);
  const signature = `sha256=${createHmac("sha256", options.secret ?? SECRET).update(body).digest("hex")}`;
  const response = await fetch(app.webhookUrl, {
    method: "POST",
    headers: { "content-type": "application/json", "x-github-event": event, "x-github-delivery": options.delivery ?? randomUUID(), "x-hub-signature-256": signature },
    body: options.tamper ? body.replace("Codertocat", "CodertocaT") : body,
  });
  return { status: response.status, body: await response.json() };
}

function git(...args: string[]): string {
  return execFileSync("git", args, { cwd: checkout, encoding: "utf8", env: { ...process.env, GIT_AUTHOR_NAME: "Codertocat", GIT_AUTHOR_EMAIL: "c@example.com", GIT_COMMITTER_NAME: "Codertocat", GIT_COMMITTER_EMAIL: "c@example.com" } }).trim();
}

/** Commits the working tree to `branch` of the served repository; returns the sha. */
async function commit(branch: string, message: string, edit?: () => Promise<void>): Promise<string> {
  git("checkout", "-q", "-B", branch, branch === "master" ? "origin/master" : "master");
  await edit?.();
  git("add", "-A");
  git("commit", "-q", "--allow-empty", "-m", message);
  git("push", "-q", "-f", "origin", `HEAD:refs/heads/${branch}`);
  git("fetch", "-q", "origin");
  return git("rev-parse", "HEAD");
}

const setGreeting = (text: string) => async () => {
  const file = join(checkout, "trigger", "hello.ts");
  await writeFile(file, (await readFile(join(HELLO, "trigger", "hello.ts"), "utf8")).replace("Hello, ", `${text}, `));
};

async function until<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const completedCheck = (sha: string) => until(`check run for ${sha.slice(0, 7)}`, () => github.checkRuns.find((r) => r.head_sha === sha && r.status === "completed"));
const deploymentsOf = (environment: string) =>
  stack.db("deployments as d").join("environments as e", "e.id", "d.environment_id").where("e.slug", environment).orderBy("d.created_at").select("d.version", "d.status", "d.image_digest", "d.commit", "d.id", "d.failure_reason");
const promotedOf = (environment: string) =>
  stack.db("environments as e").join("deployments as d", "d.id", "e.promoted_deployment_id").where("e.slug", environment).first("d.version", "d.commit", "d.image_digest");
const policy = async (method: "GET" | "PUT", body?: unknown) => callStasisApi<unknown>(stack.apiUrl, stack.adminToken, method, "/api/v1/admin/projects/hello-world/deploy-policy", body);
const commitSha = (row: { commit: unknown }) => (typeof row.commit === "string" ? JSON.parse(row.commit) : (row.commit as { sha?: string } | null))?.sha;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "stasis-github-app-"));
  database = await createTestDatabase();
  registry = await startRegistry();
  // The server accepts images only from configured registries.
  process.env.STASIS_ALLOWED_REGISTRIES = `${registry.host},oci-layout:*`;
  // One in-process runner (pulling from the registry) for the runs that read environment variables.
  stack = await startLocalStack({ stateDir: join(work, "stack"), databaseUrl: database.url, runners: 1, checkpoints: false, keyring: createKeyring(parseMasterKey(KEY_A)) });
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
  github = await startGithubStandIn({ appId: APP_ID, publicKeyPem: publicKey });

  // The repository: a bare repo served over smart HTTP, holding examples/hello on master.
  const root = join(work, "git");
  gitRoot = root;
  const bare = join(root, `${REPO}.git`);
  await mkdir(bare, { recursive: true });
  execFileSync("git", ["init", "-q", "--bare", "-b", "master", bare]);
  execFileSync("git", ["-C", bare, "config", "uploadpack.allowAnySHA1InWant", "true"]);
  execFileSync("git", ["-C", bare, "config", "http.receivepack", "true"]);
  gitServer = await startGitServer({ root, authorize: (user, password) => !refuseClones && user === "x-access-token" && github.isInstallationToken(password) });
  checkout = join(work, "checkout");
  await mkdir(checkout);
  execFileSync("git", ["init", "-q", "-b", "master", checkout]);
  git("remote", "add", "origin", bare);
  await cp(HELLO, checkout, { recursive: true, filter: (p) => !/\/(node_modules|\.stasis)(\/|$)/.test(p.slice(HELLO.length)) });
  // The App deploys a repository to the project named after it.
  const config = join(checkout, "stasis.config.ts");
  await writeFile(config, (await readFile(config, "utf8")).replace('project: "hello"', 'project: "hello-world"'));
  git("add", "-A");
  git("commit", "-q", "-m", "hello");
  git("push", "-q", "origin", "master");
  git("fetch", "-q", "origin");

  const appConfig: GithubAppConfig = {
    appId: APP_ID,
    privateKey,
    webhookSecret: SECRET,
    apiUrl: github.url,
    gitUrl: gitServer.url,
    stasisApiUrl: stack.apiUrl,
    adminToken: stack.adminToken,
    registry: `${registry.host}/apps`,
    stateDir: join(work, "app"),
    buildTimeoutMs: 120_000,
    buildConcurrency: 2,
    allowForkBuilds: false,
    branchEnvironments: {},
    withRuntime: false,
  };
  app = await startGithubApp({ config: appConfig, log: (await import("pino")).default({ level: "silent" }) });
});

afterAll(async () => {
  delete process.env.STASIS_ALLOWED_REGISTRIES;
  await rotated?.close();
  await app?.close();
  await Promise.all([gitServer?.close(), github?.close(), registry?.stop()]);
  await stack?.stop();
  await database?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("stasis github-app", () => {
  let firstPush: { sha: string; delivery: string };

  it("installation links the repository to a Stasis project named after it", async () => {
    const payload = example("installation", (p) => p.action === "created");
    expect((await send("installation", payload)).status).toBe(202);
    const project = await until("project hello-world", () => stack.db("projects").where({ slug: "hello-world" }).first("slug", "repository"));
    expect(project ? (project as { repository: string }).repository : null).toBe(REPO);
    // An admin lists a ref of their own; the App must keep it when it sets the default branch.
    await policy("PUT", { refs: { staging: ["refs/heads/develop"] } });
  });

  it("push to the default branch deploys to production and promotes, with a check run and a deployment status", async () => {
    const sha = git("rev-parse", "origin/master");
    firstPush = { sha, delivery: randomUUID() };
    expect((await send("push", pushPayload(sha), { delivery: firstPush.delivery })).status).toBe(202);
    const check = await completedCheck(sha);
    expect(check.conclusion, check.output.summary).toBe("success");
    const promoted = await promotedOf("production");
    expect(commitSha(promoted)).toBe(sha);
    expect(check.name).toBe("Stasis (production)");
    expect(check.output.title).toBe(`Deployed ${promoted.version} to production`);
    expect(check.output.summary).toContain(promoted.image_digest);
    expect(check.output.summary).toContain("`hello`");
    expect(check.output.text).toContain("Build log");
    const tags = await (await fetch(`${registry.url}/v2/apps/hello-world/tags/list`)).json();
    expect(tags.tags).toContain(`production-${promoted.version}`);
    const deployment = await until("GitHub deployment success", () => github.deployments.find((d) => d.ref === sha && d.statuses.some((s) => s.state === "success")));
    expect(deployment.environment).toBe("production");
    expect(deployment.statuses.map((s) => s.state)).toEqual(["in_progress", "success"]);
    expect(gitServer.refused).toBe(0);
  });

  it("the project's deploy policy follows the repository's default branch (master here), keeping the refs an admin listed", async () => {
    // The push payload carries repository.default_branch; the Action's OIDC exchange then takes a push to master.
    expect(await policy("GET")).toEqual({ project: "hello-world", defaultBranch: "master", refs: { staging: ["refs/heads/develop"] } });
  });

  it("a redelivery is acknowledged and not built again", async () => {
    const again = await send("push", pushPayload(firstPush.sha), { delivery: firstPush.delivery });
    expect(again).toEqual({ status: 200, body: { ok: true, duplicate: true } });
    await app.idle();
    expect((await deploymentsOf("production")).filter((d) => commitSha(d) === firstPush.sha)).toHaveLength(1);
    expect(github.checkRuns.filter((r) => r.head_sha === firstPush.sha)).toHaveLength(1);
  });

  it("a tampered body or a wrong secret gets 401 and nothing is built", async () => {
    const sha = await commit("master", "not to be built", setGreeting("Tampered"));
    const calls = github.calls.length;
    expect((await send("push", pushPayload(sha), { tamper: true })).status).toBe(401);
    expect((await send("push", pushPayload(sha), { secret: "not-the-secret" })).status).toBe(401);
    await app.idle();
    expect(github.calls.length).toBe(calls);
    expect((await deploymentsOf("production")).some((d) => commitSha(d) === sha)).toBe(false);
  });

  it("two quick pushes: only the newer one is deployed, the older is canceled", async () => {
    const older = await commit("master", "older", setGreeting("Older"));
    const newer = await commit("master", "newer", setGreeting("Newer"));
    expect((await send("push", pushPayload(older))).status).toBe(202);
    expect((await send("push", pushPayload(newer))).status).toBe(202);
    const [olderCheck, newerCheck] = await Promise.all([completedCheck(older), completedCheck(newer)]);
    expect(newerCheck.conclusion, newerCheck.output.summary).toBe("success");
    expect(olderCheck.conclusion).toBe("cancelled");
    expect(olderCheck.output.title).toContain(`superseded by commit ${newer.slice(0, 7)}`);
    await app.idle();
    expect(commitSha(await promotedOf("production"))).toBe(newer);
    const rows = await deploymentsOf("production");
    expect(rows.filter((d) => commitSha(d) === older && d.status === "DEPLOYED")).toHaveLength(0);
    // When the older one had already reserved a version, it is recorded as CANCELED.
    for (const row of rows.filter((d) => commitSha(d) === older)) expect(row.status).toBe("CANCELED");
  });

  it("a failing build fails the check run with the reason and leaves production as it was", async () => {
    const before = await promotedOf("production");
    const sha = await commit("master", "broken", async () => {
      await writeFile(join(checkout, "trigger", "broken.ts"), "export const broken = task({ id: 'broken', run: async () => { return ( } });\n");
    });
    await send("push", pushPayload(sha));
    const check = await completedCheck(sha);
    git("rm", "-q", join("trigger", "broken.ts"));
    git("commit", "-q", "-m", "fix");
    git("push", "-q", "origin", "HEAD:refs/heads/master");
    expect(check.conclusion).toBe("failure");
    expect(check.output.summary).toContain("broken.ts");
    expect(check.output.title).toBe("Build failed for production");
    expect((await promotedOf("production")).version).toBe(before.version);
    const deployment = await until("GitHub deployment failure", () => github.deployments.find((d) => d.ref === sha && d.statuses.some((s) => s.state === "failure")));
    expect(deployment.statuses.at(-1)!.description).toMatch(/^Build failed: /);
  });

  let prComment: number;

  it("pull request opened: a preview environment and one PR comment", async () => {
    const sha = await commit("changes", "preview me", setGreeting("Preview"));
    expect((await send("pull_request", pullPayload("opened", 2, sha))).status).toBe(202);
    const check = await completedCheck(sha);
    expect(check.conclusion, check.output.summary).toBe("success");
    expect(check.name).toBe("Stasis (preview/pr-2)");
    await app.idle();
    const [deployment] = await deploymentsOf("preview/pr-2");
    expect(deployment.status).toBe("DEPLOYED");
    const comments = github.comments.filter((c) => c.issue === 2);
    expect(comments).toHaveLength(1);
    expect(comments[0].body).toContain(`\`${deployment.version}\``);
    expect(comments[0].body).toContain("npx stasis trigger hello");
    prComment = comments[0].id;
    expect(github.deployments.find((d) => d.ref === sha)!.environment).toBe("preview/pr-2");
  });

  it("synchronize: a new version in the same preview environment, the comment updated in place", async () => {
    const sha = await commit("changes", "preview again", setGreeting("Preview 2"));
    await send("pull_request", pullPayload("synchronize", 2, sha));
    const check = await completedCheck(sha);
    expect(check.conclusion, check.output.summary).toBe("success");
    await app.idle();
    const rows = await deploymentsOf("preview/pr-2");
    expect(rows.map((r) => r.status)).toEqual(["DEPLOYED", "DEPLOYED"]);
    expect(rows[1].version).not.toBe(rows[0].version);
    const comments = github.comments.filter((c) => c.issue === 2);
    expect(comments.map((c) => c.id)).toEqual([prComment]);
    expect(comments[0].body).toContain(`\`${rows[1].version}\``);
    expect(comments[0].edits).toBeGreaterThanOrEqual(2);
  });

  it("closed: the preview is archived, triggers and new deploys are refused", async () => {
    await send("pull_request", pullPayload("closed", 2, git("rev-parse", "origin/changes")));
    await app.idle();
    const env = await stack.db("environments").where({ slug: "preview/pr-2" }).first("archived_at");
    expect(env.archived_at).not.toBeNull();
    expect(github.comments.find((c) => c.id === prComment)!.body).toContain("is archived");
    // Its GitHub Deployments are marked inactive, so GitHub no longer shows the preview as live.
    const previews = github.deployments.filter((d) => d.environment === "preview/pr-2");
    expect(previews).toHaveLength(2);
    for (const d of previews) expect(d.statuses.at(-1)).toMatchObject({ state: "inactive", description: "Pull request #2 closed: preview/pr-2 is archived" });
    expect(github.deployments.filter((d) => d.environment !== "preview/pr-2").flatMap((d) => d.statuses).some((s) => s.description.includes("closed"))).toBe(false);

    const key = await fetch(`${stack.apiUrl}/api/v1/admin/projects/hello-world/environments/${encodeURIComponent("preview/pr-2")}/keys`, { method: "POST", headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" }, body: "{}" });
    const { apiKey } = await key.json();
    expect(key.status).toBe(200);
    const trigger = await fetch(`${stack.apiUrl}/api/v1/tasks/hello/trigger`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: JSON.stringify({ payload: {} }) });
    const refusal = await trigger.json();
    expect([403, 409], JSON.stringify(refusal)).toContain(trigger.status);
    expect(refusal.error.message).toContain("archived");

    const sha = await commit("changes", "after close", setGreeting("Late"));
    await send("pull_request", pullPayload("reopened", 2, sha));
    const check = await completedCheck(sha);
    expect(check.conclusion).toBe("failure");
    expect(check.output.summary).toContain("is archived");
    expect(await deploymentsOf("preview/pr-2")).toHaveLength(2);
  });

  it("a pull request from a fork is not built", async () => {
    const sha = await commit("fork-branch", "from a fork", setGreeting("Fork"));
    const payload = pullPayload("opened", 7, sha);
    payload.pull_request.head.repo.full_name = "mallory/Hello-World";
    await send("pull_request", payload);
    await app.idle();
    const check = github.checkRuns.find((r) => r.head_sha === sha)!;
    expect(check.conclusion).toBe("neutral");
    expect(check.output.title).toBe("Not built: pull request from a fork");
    expect(await stack.db("environments").where({ slug: "preview/pr-7" }).first()).toBeUndefined();
    expect(github.deployments.some((d) => d.ref === sha)).toBe(false);
  });

  it("a build superseded after it reserved a version is recorded as CANCELED, with the reason", async () => {
    // The App's pipeline passes its AbortSignal to deployProject; abort it while the image is pushed.
    const token = await fetch(`${stack.apiUrl}/api/v1/admin/projects/hello-world/deploy-tokens`, { method: "POST", headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ environment: "staging" }) });
    const { token: apiKey } = await token.json();
    const controller = new AbortController();
    const layout = createLayoutImageStore(join(work, "superseded-images"));
    const store: ImageStore = { ...layout, push: async (...args) => (controller.abort(new Error("superseded by commit bbbbbbb")), layout.push(...args)) };
    await expect(deployProject({ projectDir: checkout, apiUrl: stack.apiUrl, apiKey, store, promote: true, withRuntime: false, signal: controller.signal })).rejects.toThrow("superseded by commit bbbbbbb");
    const [row] = await deploymentsOf("staging");
    expect(row).toMatchObject({ status: "CANCELED", failure_reason: "superseded by commit bbbbbbb" });
  });

  it("a repository whose name maps to a project linked to another repository is refused, naming both", async () => {
    const sha = git("rev-parse", "origin/master");
    const payload = pushPayload(sha);
    payload.repository.full_name = "Other/Hello_World";
    payload.repository.name = "Hello_World";
    const before = (await deploymentsOf("production")).length;
    await send("push", payload);
    await app.idle();
    const check = github.checkRuns.filter((r) => r.head_sha === sha && r.status === "completed").at(-1)!;
    expect(check.conclusion).toBe("failure");
    expect(check.output.summary).toContain("project hello-world is linked to the repository Codertocat/Hello-World, not Other/Hello_World");
    expect(await deploymentsOf("production")).toHaveLength(before);
  });

  it("a delivery whose handling failed (the clone refused) is handled again when GitHub redelivers it", async () => {
    const sha = await commit("master", "redeliver me", setGreeting("Redelivered"));
    const delivery = randomUUID();
    refuseClones = true;
    try {
      // Two copies of one delivery at once: one is handled, the other (arriving while it is handled) is ignored.
      const first = await Promise.all([send("push", pushPayload(sha), { delivery }), send("push", pushPayload(sha), { delivery })]);
      expect(first.map((r) => r.status).sort()).toEqual([200, 202]);
      const failed = await completedCheck(sha);
      expect(failed.conclusion).toBe("failure");
      expect(failed.output.summary).toContain("git clone of");
      await app.idle();
    } finally {
      refuseClones = false;
    }
    expect((await deploymentsOf("production")).some((d) => commitSha(d) === sha)).toBe(false);
    // GitHub's "Redeliver" sends the same X-GitHub-Delivery again.
    expect((await send("push", pushPayload(sha), { delivery })).status).toBe(202);
    const check = await until("a successful check run after the redelivery", () => github.checkRuns.find((r) => r.head_sha === sha && r.conclusion === "success"));
    expect(check.name).toBe("Stasis (production)");
    await app.idle();
    expect(commitSha(await promotedOf("production"))).toBe(sha);
    // Handled successfully now: any further redelivery is acknowledged and ignored.
    expect(await send("push", pushPayload(sha), { delivery })).toEqual({ status: 200, body: { ok: true, duplicate: true } });
  });

  it("a project in a subdirectory (tasks/, named by .stasis.yml at the repository root) is built from there", async () => {
    const bare = join(gitRoot, "Codertocat", "Monorepo.git");
    execFileSync("git", ["init", "-q", "--bare", "-b", "master", bare]);
    execFileSync("git", ["-C", bare, "config", "uploadpack.allowAnySHA1InWant", "true"]);
    const mono = join(work, "monorepo");
    await cp(HELLO, join(mono, "tasks"), { recursive: true, filter: (p) => !/\/(node_modules|\.stasis)(\/|$)/.test(p.slice(HELLO.length)) });
    const config = join(mono, "tasks", "stasis.config.ts");
    await writeFile(config, (await readFile(config, "utf8")).replace('project: "hello"', 'project: "monorepo"'));
    await writeFile(join(mono, "README.md"), "# web app and tasks in one repository\n");
    await writeFile(join(mono, ".stasis.yml"), "# where the Stasis project sits in this repository\npath: tasks\n");
    const env = { ...process.env, GIT_AUTHOR_NAME: "Codertocat", GIT_AUTHOR_EMAIL: "c@example.com", GIT_COMMITTER_NAME: "Codertocat", GIT_COMMITTER_EMAIL: "c@example.com" };
    const g = (...args: string[]) => execFileSync("git", args, { cwd: mono, encoding: "utf8", env }).trim();
    g("init", "-q", "-b", "master");
    g("add", "-A");
    g("commit", "-q", "-m", "tasks in a subdirectory");
    g("push", "-q", bare, "HEAD:refs/heads/master");
    const sha = g("rev-parse", "HEAD");
    const payload = pushPayload(sha);
    payload.repository.full_name = "Codertocat/Monorepo";
    payload.repository.name = "Monorepo";
    expect((await send("push", payload)).status).toBe(202);
    const check = await completedCheck(sha);
    expect(check.conclusion, check.output.summary).toBe("success");
    expect(check.output.text).toContain("project in tasks/");
    const promoted = await stack
      .db("environments as e")
      .join("projects as p", "p.id", "e.project_id")
      .join("deployments as d", "d.id", "e.promoted_deployment_id")
      .where({ "p.slug": "monorepo", "e.slug": "production" })
      .first("d.commit", "d.manifest");
    expect(commitSha(promoted)).toBe(sha);
    expect(JSON.stringify(promoted.manifest)).toContain("hello");
  });

  it("every clone's work dir is removed after its build", async () => {
    await app.idle();
    expect(await readdir(join(work, "app", "work"))).toEqual([]);
  });
});

// A task that reads one variable: it logs it (the run log must show it redacted) and returns a
// prefix of its sha256, so the test can tell which value the process saw without the value itself.
const SHOW_ENV = `import { createHash } from "node:crypto";
import { task } from "stasis/sdk";

export const showEnv = task({
  id: "show-env",
  run: async () => {
    const value = process.env.GREETING_SECRET ?? "(unset)";
    console.log(\`secret is \${value}\`);
    return { sha256: createHash("sha256").update(value).digest("hex").slice(0, 16) };
  },
});
`;

describe("environment variables, deployed through the App", () => {
  const PRODUCTION_VALUE = `prod-${randomBytes(6).toString("hex")}`;
  const PREVIEW_VALUE = `preview-${randomBytes(6).toString("hex")}`;
  const PREVIEW = "preview/pr-5";
  const sha256 = (value: string) => createHash("sha256").update(value).digest("hex").slice(0, 16);
  const keys: Record<string, string> = {};
  const admin = <T>(method: string, path: string, body?: unknown) => callStasisApi<T>(stack.apiUrl, stack.adminToken, method, `/api/v1/admin/projects/hello-world/environments/${path}`, body);

  async function expectOwnValues(apiUrl: string) {
    for (const [environment, value] of [["production", PRODUCTION_VALUE], [PREVIEW, PREVIEW_VALUE]] as const) {
      const { run, logs } = await runToEnd(apiUrl, keys[environment], "show-env");
      expect(run.status, logs.join("\n")).toBe("COMPLETED");
      expect(run.output, environment).toEqual({ sha256: sha256(value) });
      expect(logs).toContain("secret is [redacted:GREETING_SECRET]");
      expect(logs.join("\n")).not.toContain(value);
    }
  }

  it("production (a push to the default branch) and preview/pr-5 (a pull request opened) each get their own value, in one run each", async () => {
    const sha = await commit("master", "show the environment", async () => writeFile(join(checkout, "trigger", "show-env.ts"), SHOW_ENV));
    await admin("POST", "production/envvars", { variables: { GREETING_SECRET: PRODUCTION_VALUE } });
    expect((await send("push", pushPayload(sha))).status).toBe(202);
    const check = await completedCheck(sha);
    expect(check.conclusion, check.output.summary).toBe("success");

    const prSha = await commit("show-env-preview", "preview the environment");
    expect((await send("pull_request", pullPayload("opened", 5, prSha))).status).toBe(202);
    const prCheck = await completedCheck(prSha);
    expect(prCheck.conclusion, prCheck.output.summary).toBe("success");
    await admin("POST", `${encodeURIComponent(PREVIEW)}/envvars`, { variables: { GREETING_SECRET: PREVIEW_VALUE } });

    for (const environment of ["production", PREVIEW]) keys[environment] = (await admin<{ apiKey: string }>("POST", `${encodeURIComponent(environment)}/keys`, {})).apiKey;
    await expectOwnValues(stack.apiUrl);
  });

  it("after `stasis admin rotate-key` (the server restarted with the new key, the old one as STASIS_ENCRYPTION_KEY_PREVIOUS), new runs still get their values", async () => {
    rotated = await rotateMasterKey(stack, KEY_A, KEY_B);
    expect(rotated.result).toEqual({ rewrapped: 1, total: 1, masterKeyId: masterKeyId(KEY_B) });
    expect(rotated.wrappedBy).toEqual([masterKeyId(KEY_B)]);
    await expectOwnValues(rotated.apiUrl);
  });
});
