import { describe, expect, it } from "vitest";
import type { TaskManifestEntry } from "../../schemas/index.ts";
import { checkWebhookEvents } from "./check-webhook-events.ts";

const entry = (provider: "stripe" | "github" | "http", events: string[]): TaskManifestEntry => ({
  id: "t",
  filePath: "trigger/t.ts",
  exportName: "t",
  retry: { maxAttempts: 1, factor: 2, minTimeoutInMs: 0, maxTimeoutInMs: 0, randomize: false },
  machine: { preset: "small-1x", cpu: 0.5, memory: 512 },
  queue: { name: "t" },
  webhook: { source: "s", provider, events, secretEnv: "S" },
});

describe("checkWebhookEvents", () => {
  it("accepts the providers' own names, `*`, and anything for http sources", () => {
    expect(() => checkWebhookEvents([entry("stripe", ["customer.subscription.updated", "invoice.paid", "*"])])).not.toThrow();
    expect(() => checkWebhookEvents([entry("github", ["issues", "issues.opened", "push", "pull_request.synchronize"])])).not.toThrow();
    expect(() => checkWebhookEvents([entry("http", ["order.created", "whatever"])])).not.toThrow();
  });

  it("refuses a name the provider never sends, naming the task, the file and near names", () => {
    expect(() => checkWebhookEvents([entry("github", ["issue.opened"])])).toThrow(/task "t" \(trigger\/t\.ts\): on: "issue\.opened" is not a github event; did you mean "issues\.opened"/);
    expect(() => checkWebhookEvents([entry("stripe", ["invoice.payed"])])).toThrow(/"invoice\.payed" is not a stripe event; did you mean "invoice\.paid"/);
  });
});
