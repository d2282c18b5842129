import type { Knex } from "knex";
import type { BuildManifest, WebhookSourceView, WebhookTrigger } from "../../schemas/index.ts";
import { notFound } from "../errors.ts";

/** One webhook source of a version: how it is verified and which tasks listen to which events. */
export interface WebhookSource {
  trigger: WebhookTrigger;
  tasks: Array<{ id: string; events: string[] }>;
}

export interface WebhookTarget {
  projectId: string;
  project: string;
  environmentId: string;
  environment: string;
  archived: boolean;
  version: string | null;
  manifest: BuildManifest | null;
}

/** The environment a webhook URL names, with its promoted version's manifest; a 404 names what is unknown. */
export async function resolveWebhookTarget(db: Knex, project: string, environment: string): Promise<WebhookTarget> {
  const p = await db("projects").where({ slug: project }).first("id", "slug");
  if (!p) throw notFound(`project ${project} does not exist`, "project");
  const row = await db("environments as e")
    .leftJoin("deployments as d", "d.id", "e.promoted_deployment_id")
    .where({ "e.project_id": p.id, "e.slug": environment })
    .first("e.id", "e.slug", "e.archived_at", "d.version", "d.manifest");
  if (!row) throw notFound(`environment ${environment} does not exist in project ${project}`, "environment");
  return { projectId: p.id, project: p.slug, environmentId: row.id, environment: row.slug, archived: row.archived_at !== null, version: row.version ?? null, manifest: row.manifest ?? null };
}

export function sourcesOf(manifest: BuildManifest | null): Map<string, WebhookSource> {
  const sources = new Map<string, WebhookSource>();
  for (const task of manifest?.tasks ?? []) {
    if (!task.webhook) continue;
    const source = sources.get(task.webhook.source) ?? { trigger: task.webhook, tasks: [] };
    source.tasks.push({ id: task.id, events: task.webhook.events });
    sources.set(task.webhook.source, source);
  }
  return sources;
}

export function webhookUrl(publicUrl: string, project: string, environment: string, sourceId: string): string {
  return `${publicUrl}/api/v1/webhooks/${encodeURIComponent(project)}/${encodeURIComponent(environment)}/${encodeURIComponent(sourceId)}`;
}

/** What a user pastes into the provider's settings, line by line. */
function setupLines(source: WebhookSource, url: string, environment: string): string[] {
  const events = [...new Set(source.tasks.flatMap((t) => t.events))];
  const secret = source.trigger.secretEnv;
  const setSecret = (value: string) => `stasis env set ${secret}=${value} --env ${environment}`;
  switch (source.trigger.provider) {
    case "stripe":
      return [
        `Stripe Dashboard → Developers → Webhooks → Add endpoint; Endpoint URL: ${url}`,
        `Events to send: ${events.includes("*") ? "all events" : events.join(", ")}`,
        `Reveal the endpoint's signing secret (whsec_…) and run: ${setSecret("whsec_…")}`,
      ];
    case "github":
      return [
        `Repository (or organization) Settings → Webhooks → Add webhook; Payload URL: ${url}`,
        "Content type: application/json",
        `Secret: a long random string; run: ${setSecret("<the same string>")}`,
        `Events: ${events.includes("*") ? "Send me everything" : [...new Set(events.map((e) => e.split(".")[0]))].join(", ")}`,
      ];
    case "http": {
      const v = source.trigger.http!.verify;
      return [
        `Have the sender POST to: ${url}`,
        `It signs the raw body with HMAC-${v.algorithm.toUpperCase()} (${v.encoding}) in header ${v.header}${v.prefix ? ` after "${v.prefix}"` : ""}`,
        `Set the shared secret: ${setSecret("<the secret>")}`,
      ];
    }
  }
}

export function sourceViews(target: WebhookTarget, publicUrl: string, variableNames: Set<string>): WebhookSourceView[] {
  return [...sourcesOf(target.manifest)].sort(([a], [b]) => a.localeCompare(b)).map(([id, source]) => {
    const url = webhookUrl(publicUrl, target.project, target.environment, id);
    return {
      id,
      provider: source.trigger.provider,
      url,
      events: [...new Set(source.tasks.flatMap((t) => t.events))],
      tasks: source.tasks.map((t) => t.id),
      secretEnv: source.trigger.secretEnv,
      secretSet: variableNames.has(source.trigger.secretEnv),
      setup: setupLines(source, url, target.environment),
    };
  });
}
