import type { Command } from "commander";
import type { z } from "zod";
import { callStasisApi } from "../../builder/index.ts";
import {
  WebhookSourceId,
  type ListDeliveriesResponse,
  type ListWebhookSourcesResponse,
  type ListWebhookSubscriptionsResponse,
  type UnsubscribeWebhookResponse,
  type WebhookSubscriptionView,
} from "../../schemas/index.ts";
import { resolveApiTarget } from "../api-target.ts";
import { CliError, ExitCode, printResult, table } from "../output.ts";

type Sources = z.infer<typeof ListWebhookSourcesResponse>;
type Deliveries = z.infer<typeof ListDeliveriesResponse>;
type Subscriptions = z.infer<typeof ListWebhookSubscriptionsResponse>;

function formatSubscriptions(result: Subscriptions): string {
  if (result.data.length === 0) return `no webhook subscriptions in ${result.project}/${result.environment}`;
  const rows = result.data.map((s) => [s.id, s.source, s.repository, s.events.join(","), `${s.integration}/${s.externalId ?? "(team)"}`, s.account ?? "-", String(s.hookId), s.connectionStatus]);
  return table([["ID", "SOURCE", "REPOSITORY", "EVENTS", "CONNECTION", "ACCOUNT", "HOOK", "STATUS"], ...rows]);
}

function formatSources(result: Sources): string {
  if (result.data.length === 0) return `no webhook sources in ${result.project}/${result.environment}${result.version ? ` (version ${result.version})` : " (nothing is promoted)"}`;
  return result.data
    .map((s) =>
      [
        `${s.id} (${s.provider})  ${s.url}`,
        `  tasks:  ${s.tasks.join(", ")}`,
        `  events: ${s.events.join(", ")}`,
        `  secret: ${s.secretEnv} ${s.secretSet ? "(set)" : "(NOT SET: deliveries are refused until it is)"}`,
        "  in the provider:",
        ...s.setup.map((line) => `    - ${line}`),
      ].join("\n"),
    )
    .join("\n\n");
}

function formatDeliveries(source: string, result: Deliveries): string {
  if (result.data.length === 0) return `no deliveries to ${source} yet`;
  const rows = result.data.map((d) => [d.receivedAt, d.status, d.event ?? "-", d.eventId ?? "-", d.verified ? "verified" : `refused: ${d.failure ?? "?"}`, d.runs.length ? d.runs.join(",") : "no runs"]);
  return table([["RECEIVED", "STATUS", "EVENT", "EVENT ID", "SIGNATURE", "RUNS"], ...rows]);
}

export function registerWebhooksCommands(program: Command): void {
  const group = program.command("webhooks").description("webhook sources of the promoted version and their deliveries");

  group
    .command("list")
    .description("each source's URL and what to paste into the provider's settings")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const result = await callStasisApi<Sources>(apiUrl, apiKey, "GET", "/api/v1/webhook-sources");
      printResult(Boolean(opts.json), result, () => formatSources(result));
    });

  group
    .command("deliveries <source>")
    .description("recent deliveries to a source: time, event, verified or why not, runs started")
    .option("--limit <n>", "how many (1-200)", "25")
    .option("--json", "print JSON")
    .action(async (source: string, opts: { limit: string; json?: boolean }) => {
      const checked = WebhookSourceId.safeParse(source);
      if (!checked.success) throw new CliError(`source ${JSON.stringify(source)}: ${checked.error.issues[0]!.message}`, ExitCode.USAGE);
      const { apiUrl, apiKey } = resolveApiTarget();
      const result = await callStasisApi<Deliveries>(apiUrl, apiKey, "GET", `/api/v1/webhook-sources/${encodeURIComponent(source)}/deliveries?limit=${encodeURIComponent(opts.limit)}`);
      printResult(Boolean(opts.json), result, () => formatDeliveries(source, result));
    });

  group
    .command("subscribe <source>")
    .description("subscribe a github source to a repository with a connection: Stasis creates the repository webhook with that connection's token")
    .requiredOption("--integration <name>", "the github integration whose connection makes the hook")
    .requiredOption("--repository <owner/repo>", "the repository")
    .option("--external-id <id>", "one of your users' connection (default: the team's)")
    .option("--events <events>", "comma-separated GitHub events (default: those the source's tasks listen to)")
    .option("--json", "print JSON")
    .action(async (source: string, opts: { integration: string; repository: string; externalId?: string; events?: string; json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const body = { source, integration: opts.integration, repository: opts.repository, ...(opts.externalId ? { externalId: opts.externalId } : {}), ...(opts.events ? { events: opts.events.split(/[\s,]+/).filter(Boolean) } : {}) };
      const result = await callStasisApi<WebhookSubscriptionView>(apiUrl, apiKey, "POST", "/api/v1/webhook-subscriptions", body);
      printResult(Boolean(opts.json), result, () => `subscribed ${result.source} to ${result.repository} (${result.events.join(", ")}) as ${result.id}; GitHub hook ${result.hookId} delivers to ${result.url}`);
    });

  group
    .command("subscriptions")
    .description("webhook subscriptions: source, repository, events, whose connection, the hook at GitHub")
    .option("--source <source>", "only this source")
    .option("--json", "print JSON")
    .action(async (opts: { source?: string; json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const result = await callStasisApi<Subscriptions>(apiUrl, apiKey, "GET", `/api/v1/webhook-subscriptions${opts.source ? `?source=${encodeURIComponent(opts.source)}` : ""}`);
      printResult(Boolean(opts.json), result, () => formatSubscriptions(result));
    });

  group
    .command("unsubscribe <id>")
    .description("delete the hook at GitHub, then the subscription")
    .option("--force", "remove the subscription even when GitHub cannot be asked (the hook is then left in the repository)")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { force?: boolean; json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const result = await callStasisApi<UnsubscribeWebhookResponse>(apiUrl, apiKey, "DELETE", `/api/v1/webhook-subscriptions/${encodeURIComponent(id)}${opts.force ? "?force=true" : ""}`);
      printResult(Boolean(opts.json), result, () => (result.hookDeleted ? `unsubscribed ${id}; its hook is deleted at GitHub` : `unsubscribed ${id}; its hook is LEFT at GitHub (${result.hookError}): delete it in the repository's settings`));
    });
}
