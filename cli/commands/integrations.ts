import type { Command } from "commander";
import type { z } from "zod";
import { callStasisApi } from "../../builder/index.ts";
import { AddIntegrationRequest, IntegrationSlug, type ConnectionListResponse, type DeleteIntegrationResponse, type IntegrationListResponse, type IntegrationView } from "../../schemas/index.ts";
import { resolveApiTarget } from "../api-target.ts";
import { CliError, ExitCode, printResult, table } from "../output.ts";

type Integrations = z.infer<typeof IntegrationListResponse>;
type Connections = z.infer<typeof ConnectionListResponse>;

interface AddOptions {
  provider: string;
  issuer?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  revocationEndpoint?: string;
  apiUrl?: string;
  clientId?: string;
  clientSecret?: string;
  scopes?: string;
  json?: boolean;
}

function formatList(result: Integrations, connections: Connections): string {
  if (result.data.length === 0) return `no integrations in ${result.project}/${result.environment}`;
  const rows = result.data.map((i) => [i.slug, i.provider, i.issuer ?? i.tokenEndpoint ?? "-", i.scopes.join(" ") || "-", String(i.connections)]);
  const lines = [table([["INTEGRATION", "PROVIDER", "ISSUER / TOKEN ENDPOINT", "SCOPES", "CONNECTIONS"], ...rows])];
  if (connections.data.length > 0) {
    const conn = connections.data.map((c) => [c.integration, c.externalId ?? "(team)", c.account ?? "-", c.status, c.expiresAt ?? "never", c.lastRefreshAt ?? "-"]);
    lines.push("", table([["INTEGRATION", "EXTERNAL ID", "ACCOUNT", "STATUS", "EXPIRES", "LAST REFRESH"], ...conn]));
  }
  return lines.join("\n");
}

/** `stasis integrations add|list|remove`: the API key's environment (client secrets go in encrypted). */
export function registerIntegrationsCommands(program: Command): void {
  const group = program.command("integrations").description("OAuth / API-key integrations of the API key's environment (connections are made from the dashboard or Connect links)");

  group
    .command("add <name>")
    .description("add an integration: --provider oidc --issuer URL, or oauth2 with endpoints, or github/slack/google, or api_key")
    .requiredOption("--provider <provider>", "oidc | oauth2 | github | slack | google | api_key")
    .option("--issuer <url>", "OpenID Connect issuer (its discovery document gives the endpoints)")
    .option("--authorization-endpoint <url>", "OAuth 2.0 authorization endpoint")
    .option("--token-endpoint <url>", "OAuth 2.0 token endpoint")
    .option("--revocation-endpoint <url>", "token revocation endpoint (used when a connection is revoked)")
    .option("--api-url <url>", "the provider's REST API for webhook subscriptions (github: default https://api.github.com; GitHub Enterprise Server: https://<host>/api/v3)")
    .option("--client-id <id>", "the OAuth app's client id")
    .option("--client-secret <secret>", "the OAuth app's client secret (default: $STASIS_CLIENT_SECRET, so it stays out of shell history)")
    .option("--scopes <scopes>", "space- or comma-separated scopes to ask for")
    .option("--json", "print JSON")
    .action(async (name: string, opts: AddOptions) => {
      const body = {
        slug: name,
        provider: opts.provider,
        issuer: opts.issuer,
        authorizationEndpoint: opts.authorizationEndpoint,
        tokenEndpoint: opts.tokenEndpoint,
        revocationEndpoint: opts.revocationEndpoint,
        apiUrl: opts.apiUrl,
        clientId: opts.clientId,
        clientSecret: opts.clientSecret ?? (process.env.STASIS_CLIENT_SECRET || undefined),
        scopes: opts.scopes ? opts.scopes.split(/[\s,]+/).filter(Boolean) : [],
      };
      const checked = AddIntegrationRequest.safeParse(body);
      if (!checked.success) {
        const issue = checked.error.issues[0]!;
        throw new CliError(`${issue.path.join(".") || "integration"}: ${issue.message}`, ExitCode.USAGE);
      }
      const { apiUrl, apiKey } = resolveApiTarget();
      const result = await callStasisApi<IntegrationView>(apiUrl, apiKey, "POST", "/api/v1/integrations", checked.data);
      printResult(Boolean(opts.json), result, () => `added integration ${result.slug} (${result.provider}${result.issuer ? `, ${result.issuer}` : ""}); connect an account from the dashboard's Connections page`);
    });

  group
    .command("list")
    .description("integrations and their connections (account, status, expiry; never tokens)")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const result = await callStasisApi<Integrations>(apiUrl, apiKey, "GET", "/api/v1/integrations");
      const connections = await callStasisApi<Connections>(apiUrl, apiKey, "GET", "/api/v1/connections");
      printResult(Boolean(opts.json), { ...result, connections: connections.data }, () => formatList(result, connections));
    });

  group
    .command("remove <name>")
    .description("remove an integration and every connection made through it")
    .option("--json", "print JSON")
    .action(async (name: string, opts: { json?: boolean }) => {
      const checked = IntegrationSlug.safeParse(name);
      if (!checked.success) throw new CliError(`integration ${JSON.stringify(name)}: ${checked.error.issues[0]!.message}`, ExitCode.USAGE);
      const { apiUrl, apiKey } = resolveApiTarget();
      const result = await callStasisApi<z.infer<typeof DeleteIntegrationResponse>>(apiUrl, apiKey, "DELETE", `/api/v1/integrations/${encodeURIComponent(name)}`);
      if (!result.deleted && !opts.json) throw new CliError(`there is no integration ${name}`, ExitCode.FAILURE);
      printResult(Boolean(opts.json), result, () => `removed integration ${name} and ${result.connectionsDeleted} connection(s)`);
    });
}
