import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { planFromEvent } from "./environment.ts";
import { readInputs } from "./inputs.ts";

const examples = createRequire(import.meta.url)("@octokit/webhooks-examples") as Array<{ name: string; examples: Array<Record<string, any>> }>;
const payload = (event: string, pick: (p: Record<string, any>) => boolean) => examples.find((e) => e.name === event)!.examples.find(pick)!;

describe("planFromEvent (real webhook payloads)", () => {
  it("push to the default branch → production, with the commit", () => {
    const push = payload("push", (p) => p.ref === "refs/heads/master" && !p.deleted);
    expect(planFromEvent({ eventName: "push", payload: push, env: {} })).toEqual({
      kind: "deploy",
      environment: "production",
      commit: { sha: push.after, branch: "master", message: push.head_commit.message, committedAt: push.head_commit.timestamp, repository: "Codertocat/Hello-World" },
    });
  });

  it("push of a tag or a deleted ref → nothing, with the reason; the environment input overrides", () => {
    const tag = payload("push", (p) => p.ref === "refs/tags/simple-tag" && !p.deleted);
    expect(planFromEvent({ eventName: "push", payload: tag, env: {} })).toMatchObject({ kind: "skip", reason: expect.stringContaining("is not the default branch (master)") });
    expect(planFromEvent({ eventName: "push", payload: tag, environment: "staging", env: {} })).toMatchObject({ kind: "deploy", environment: "staging" });
    const deleted = payload("push", (p) => p.deleted === true);
    expect(planFromEvent({ eventName: "push", payload: deleted, env: {} })).toMatchObject({ kind: "skip", reason: expect.stringContaining("deleted") });
  });

  it("pull_request opened/synchronize → preview/pr-<n>; closed → archive it", () => {
    const opened = payload("pull_request", (p) => p.action === "opened");
    expect(planFromEvent({ eventName: "pull_request", payload: opened, env: {} })).toMatchObject({ kind: "deploy", environment: `preview/pr-${opened.number}`, commit: { sha: opened.pull_request.head.sha, branch: opened.pull_request.head.ref } });
    const sync = payload("pull_request", (p) => p.action === "synchronize");
    expect(planFromEvent({ eventName: "pull_request", payload: sync, env: {} })).toMatchObject({ kind: "deploy", environment: `preview/pr-${sync.number}` });
    const closed = payload("pull_request", (p) => p.action === "closed");
    expect(planFromEvent({ eventName: "pull_request", payload: closed, env: {} })).toEqual({ kind: "archive", environment: `preview/pr-${closed.number}` });
  });

  it("a pull request records the merge commit it built (GITHUB_SHA) and its head", () => {
    const opened = payload("pull_request", (p) => p.action === "opened");
    const merge = "f".repeat(40);
    expect(planFromEvent({ eventName: "pull_request", payload: opened, env: { GITHUB_SHA: merge } })).toMatchObject({ kind: "deploy", commit: { sha: merge, headSha: opened.pull_request.head.sha } });
  });

  it("an event it cannot map asks for the environment input", () => {
    expect(() => planFromEvent({ eventName: "release", payload: {}, env: {} })).toThrow(/set the environment input/);
  });
});

describe("readInputs", () => {
  const read = (values: Record<string, string>) => readInputs((name) => values[name] ?? "");

  it("applies defaults and normalises", () => {
    expect(read({ "api-url": "https://stasis.example.com/", registry: "ghcr.io/acme/tasks" })).toEqual({
      apiUrl: "https://stasis.example.com",
      apiKey: undefined,
      workingDirectory: ".",
      environment: undefined,
      promote: true,
      registry: "ghcr.io/acme/tasks",
      registryAuth: undefined,
      oidcAudience: "stasis",
      project: undefined,
    });
    expect(read({ "api-url": "http://127.0.0.1:1", "skip-promotion": "true", "registry-username": "u", "registry-password": "p" })).toMatchObject({ promote: false, registryAuth: { username: "u", password: "p" } });
  });

  it("lower-cases the registry's repository path (GHCR refuses upper case), keeping the host", () => {
    expect(read({ "api-url": "https://x.example", registry: "ghcr.io/Acme-E2E/Hello-Tasks/tasks" }).registry).toBe("ghcr.io/acme-e2e/hello-tasks/tasks");
    expect(read({ "api-url": "https://x.example", registry: "Registry.Example:5000/Acme/T" }).registry).toBe("Registry.Example:5000/acme/t");
  });

  it("names every bad input and what it should be", () => {
    expect(() => read({ "api-url": "", environment: "prod", "skip-promotion": "yes", registry: "no-host" })).toThrow(
      /input api-url: .*; input environment: environment is production, staging, development or preview\/<branch>; input skip-promotion: must be true or false; input registry: is host\[:port\]\/repository/,
    );
    expect(() => read({ "api-url": "https://x.example", "registry-username": "u" })).toThrow("registry-username and registry-password go together");
  });
});
