import { describe, expect, it } from "vitest";
import { task } from "../task.ts";
import { webhooks } from "../webhooks.ts";
import { indexTasks } from "./index-tasks.ts";

const run = async () => null;

describe("indexing safety checkpoints", () => {
  it("puts checkpoint.every into the manifest in ms; a task's own setting wins over the config's", () => {
    const modules = [{ filePath: "trigger/a.ts", exports: { own: task({ id: "own", checkpoint: { every: "10m" }, run }), inherits: task({ id: "inherits", run }) } }];
    const entries = indexTasks(modules, { checkpoint: { every: 30_000 } });
    expect(entries.map((e) => [e.id, e.checkpoint])).toEqual([
      ["own", { everyMs: 600_000 }],
      ["inherits", { everyMs: 30_000 }],
    ]);
    expect(indexTasks([{ filePath: "trigger/b.ts", exports: { none: task({ id: "none", run }) } }])[0]!.checkpoint).toBeUndefined();
  });

  it("refuses an interval that is not a duration or shorter than a second, naming the task", () => {
    expect(() => indexTasks([{ filePath: "trigger/c.ts", exports: { fast: task({ id: "fast", checkpoint: { every: "200ms" }, run }) } }])).toThrow(/task "fast" .*checkpoint\.every must be at least 1000 ms/);
    expect(() => indexTasks([{ filePath: "trigger/c.ts", exports: { bad: task({ id: "bad", checkpoint: { every: "soon" }, run }) } }])).toThrow(/task "bad" .*checkpoint\.every: duration "soon"/);
  });
});

describe("indexing webhook tasks", () => {
  const on = (source: { task(options: { id: string; on: "*"; run: typeof run }): unknown }) => [{ filePath: "trigger/hooks.ts", exports: { hook: source.task({ id: "hook", on: "*", run }) } }];

  it("checks a source when the build indexes it, with what the call was given, and fills the http defaults", () => {
    expect(() => indexTasks(on(webhooks.stripe({ id: "no spaces" })))).toThrow(/^webhooks\.stripe\(\{ id \}\): /);
    expect(() => indexTasks(on(webhooks.stripe({ id: "billing", secretEnv: "NOT-A-NAME" })))).toThrow(/^webhooks\.stripe\(\{ id: "billing", secretEnv \}\): a variable name matches/);
    expect(() => indexTasks(on(webhooks.http({ id: "acme", verify: { header: "X Sig" } })))).toThrow(/^webhooks\.http\(\{ id: "acme" \}\)\.verify\.header: a header name uses letters, digits and '-'/);
    const [entry] = indexTasks(on(webhooks.http({ id: "acme", verify: { header: "X-Sig" } })));
    expect(entry!.webhook).toEqual({ source: "acme", provider: "http", events: ["*"], secretEnv: "ACME_WEBHOOK_SECRET", http: { verify: { header: "X-Sig", algorithm: "sha256", encoding: "hex", prefix: "" } } });
  });
});
