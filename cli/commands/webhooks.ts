import type { Command } from "commander";
import type { z } from "zod";
import { callStasisApi } from "../../builder/index.ts";
import { WebhookSourceId, type ListDeliveriesResponse, type ListWebhookSourcesResponse } from "../../schemas/index.ts";
import { resolveApiTarget } from "../api-target.ts";
import { CliError, ExitCode, printResult, table } from "../output.ts";

type Sources = z.infer<typeof ListWebhookSourcesResponse>;
type Deliveries = z.infer<typeof ListDeliveriesResponse>;

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
}
