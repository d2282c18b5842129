import { emitterEventNames } from "@octokit/webhooks";
import type { TaskManifestEntry } from "../../schemas/index.ts";
import { BuilderError } from "../errors.ts";
import { STRIPE_EVENT_TYPES } from "./stripe-event-types.ts";

/** Event names each provider can send, where the provider publishes them (`http` sources: any). */
const KNOWN: Record<string, ReadonlySet<string> | null> = {
  stripe: new Set<string>(STRIPE_EVENT_TYPES),
  github: new Set<string>(emitterEventNames),
  http: null,
};

/** Edit distance (insert, delete, substitute), for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The three known names closest to a typo. */
function suggestions(known: ReadonlySet<string>, name: string): string[] {
  return [...known]
    .map((k) => ({ k, d: distance(k, name) }))
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, 3)
    .map((x) => x.k);
}

/**
 * Build-time check of every webhook task's `on`: a name the provider never sends is a task that would
 * never run, so the build stops naming the task, the event and the nearest real names.
 */
export function checkWebhookEvents(tasks: TaskManifestEntry[]): void {
  for (const task of tasks) {
    if (!task.webhook) continue;
    const known = KNOWN[task.webhook.provider];
    if (!known) continue;
    for (const event of task.webhook.events) {
      if (event === "*" || known.has(event)) continue;
      const near = suggestions(known, event);
      throw new BuilderError(
        "UNKNOWN_WEBHOOK_EVENT",
        `task "${task.id}" (${task.filePath}): on: "${event}" is not a ${task.webhook.provider} event; did you mean ${near.map((n) => `"${n}"`).join(", ")}?`,
      );
    }
  }
}
