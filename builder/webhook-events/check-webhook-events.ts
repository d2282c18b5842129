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

/** The known names closest to a typo, by shared prefix then length. */
function suggestions(known: ReadonlySet<string>, name: string): string[] {
  const score = (k: string) => {
    let i = 0;
    while (i < k.length && i < name.length && k[i] === name[i]) i++;
    return i * 100 - Math.abs(k.length - name.length);
  };
  return [...known].sort((a, b) => score(b) - score(a)).slice(0, 3);
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
