import type { BuildManifest } from "../../schemas/index.ts";
import { badRequest } from "../errors.ts";
import { parseCron } from "../schedules/cron.ts";

/**
 * What the manifest's zod schema cannot say about webhook and schedule entries: every cron and zone
 * parses, and the tasks of one webhook source agree on how it is verified. A 400 names the field.
 */
export function checkManifestTriggers(manifest: BuildManifest): void {
  const sources = new Map<string, { index: number; signature: string }>();
  manifest.tasks.forEach((task, i) => {
    if (task.webhook && task.schedule) throw badRequest(`manifest.tasks.${i}: task ${task.id} has both a webhook and a schedule`, `manifest.tasks.${i}`);
    if (task.schedule) parseCron(task.schedule, { cron: `manifest.tasks.${i}.schedule.cron`, timezone: `manifest.tasks.${i}.schedule.timezone` });
    if (task.webhook) {
      const { source, provider, secretEnv, http } = task.webhook;
      if (provider === "http" && !http) throw badRequest(`manifest.tasks.${i}.webhook.http: an http source needs its verify settings`, `manifest.tasks.${i}.webhook.http`);
      const signature = JSON.stringify({ provider, secretEnv, http: http ?? null });
      const earlier = sources.get(source);
      if (earlier && earlier.signature !== signature) {
        throw badRequest(`manifest.tasks.${i}.webhook: task ${task.id} declares webhook source ${source} differently than task ${manifest.tasks[earlier.index]!.id} (provider, secret or verify settings)`, `manifest.tasks.${i}.webhook`);
      }
      sources.set(source, { index: i, signature });
    }
  });
}
