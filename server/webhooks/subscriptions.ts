import type { Knex } from "knex";
import type { HookLeft, UnsubscribeWebhookResponse, WebhookSubscriptionOrigin, WebhookSubscriptionView } from "../../schemas/index.ts";
import type { EnvironmentPrincipal } from "../auth.ts";
import { brokenError, markConnectionBroken, readToken, type TokenEnv } from "../connections/store.ts";
import type { Engine } from "../engine/context.ts";
import { StasisError } from "../errors.ts";
import { decryptSecret } from "../secrets/crypto.ts";
import { dataKeyFor } from "../secrets/data-keys.ts";
import type { Keyring } from "../secrets/keyring.ts";
import { deleteHook, GithubRefusal } from "./github-hooks.ts";
import { webhookUrl } from "./sources.ts";

export const subscriptionSecretPlace = (id: string) => ["webhook_subscription", id, "secret"] as const;

interface SubscriptionRow {
  id: string;
  environment_id: string;
  source_id: string;
  connection_id: string;
  repository: string;
  events: string[];
  hook_id: string | number;
  secret_encrypted: Buffer;
  created_at: Date;
}
type JoinedRow = SubscriptionRow & { slug: string; external_id: string; account: string | null; status: "active" | "broken"; api_url?: string };

export function subscriptionView(publicUrl: string, env: Pick<EnvironmentPrincipal, "project" | "environment">, row: JoinedRow): WebhookSubscriptionView {
  return {
    id: row.id,
    source: row.source_id,
    provider: "github",
    integration: row.slug,
    externalId: row.external_id === "" ? null : row.external_id,
    account: row.account,
    repository: row.repository,
    events: row.events,
    hookId: Number(row.hook_id),
    url: `${webhookUrl(publicUrl, env.project, env.environment, row.source_id)}/${row.id}`,
    connectionStatus: row.status,
    createdAt: row.created_at.toISOString(),
  };
}

function joined(db: Knex) {
  return db("webhook_subscriptions as s")
    .join("connections as c", "c.id", "s.connection_id")
    .join("integrations as i", "i.id", "c.integration_id")
    .select("s.*", "i.slug", "c.external_id", "c.account", "c.status", db.raw("i.metadata->>'api_url' AS api_url"));
}

export async function listSubscriptions(db: Knex, publicUrl: string, env: EnvironmentPrincipal, filter: { source?: string; integration?: string; externalId?: string }): Promise<WebhookSubscriptionView[]> {
  const query = joined(db).where("s.environment_id", env.environmentId);
  if (filter.source) query.where("s.source_id", filter.source);
  if (filter.integration) query.where("i.slug", filter.integration);
  if (filter.externalId) query.where("c.external_id", filter.externalId);
  const rows = (await query.orderBy([{ column: "s.source_id" }, { column: "s.created_at" }])) as JoinedRow[];
  return rows.map((row) => subscriptionView(publicUrl, env, row));
}

/** Deletes one hook with its connection's current token; the reason it could not, or null. A 401 marks the connection broken. */
async function removeHook(db: Knex, keyring: Keyring | null | undefined, env: TokenEnv, row: JoinedRow): Promise<string | null> {
  try {
    const token = await readToken(db, keyring, env, row.slug, row.external_id || undefined);
    await deleteHook(row.api_url!, token.accessToken, row.repository, Number(row.hook_id));
    return null;
  } catch (error) {
    if (error instanceof GithubRefusal && error.status === 401) {
      const reason = `GitHub refused its access token (401 ${error.message}): the account revoked Stasis's access`;
      await markConnectionBroken(db, row.connection_id, reason);
      return `the connection is broken: ${reason}`;
    }
    if (error instanceof GithubRefusal) return `GitHub answered ${error.status || "nothing"} (${error.message})`;
    if (error instanceof StasisError) return `${error.code}: ${error.message}`;
    throw error;
  }
}

/**
 * Removes a subscription: the hook at GitHub first, then the row. When GitHub cannot be asked (the
 * connection is broken, GitHub is down) the row stays and the error says why — unless `force`, which
 * deletes the row anyway and says the hook is left (its deliveries are then refused as unknown).
 */
export async function unsubscribeWebhook(engine: Engine, env: EnvironmentPrincipal, id: string, force: boolean): Promise<UnsubscribeWebhookResponse> {
  const row = (await joined(engine.db).where({ "s.id": id, "s.environment_id": env.environmentId }).first()) as JoinedRow | undefined;
  if (!row) throw new StasisError("WEBHOOK_SUBSCRIPTION_NOT_FOUND", 404, `there is no webhook subscription ${id} in ${env.project}/${env.environment}`, { field: "id" });
  const failure = await removeHook(engine.db, engine.keyring, env, row);
  if (failure && !force) {
    const broken = (await engine.db("connections").where({ id: row.connection_id }).first("status", "broken_reason")) as { status: string; broken_reason: string | null } | undefined;
    if (broken?.status === "broken") {
      const error = brokenError(row.slug, row.external_id, broken.broken_reason);
      throw new StasisError(error.code, error.status, `${error.message}. The hook ${row.hook_id} on ${row.repository} could not be deleted; connect again, or unsubscribe with force and delete it in the repository's settings`);
    }
    throw new StasisError("GITHUB_UNAVAILABLE", 502, `the hook ${row.hook_id} on ${row.repository} could not be deleted (${failure}); the subscription is kept: try again, or unsubscribe with force`, { expose: true });
  }
  const deleted = await engine.db("webhook_subscriptions").where({ id }).del();
  return { id, deleted: deleted > 0, hookDeleted: failure === null, hookError: failure };
}

/**
 * Before connections go (revoke, integration removal): deletes their subscriptions' hooks at GitHub
 * while the tokens still work, then the rows. What could not be deleted at GitHub is reported, not
 * blocking: a user who revoked access at GitHub can still revoke here.
 */
export async function removeSubscriptionsOf(db: Knex, keyring: Keyring | null | undefined, env: TokenEnv, connectionIds: string[]): Promise<{ subscriptionsDeleted: number; hooksLeft: HookLeft[] }> {
  if (connectionIds.length === 0) return { subscriptionsDeleted: 0, hooksLeft: [] };
  const rows = (await joined(db).whereIn("s.connection_id", connectionIds)) as JoinedRow[];
  const hooksLeft: HookLeft[] = [];
  for (const row of rows) {
    const failure = await removeHook(db, keyring, env, row);
    if (failure) hooksLeft.push({ subscription: row.id, repository: row.repository, hookId: Number(row.hook_id), reason: failure });
  }
  const subscriptionsDeleted = rows.length ? await db("webhook_subscriptions").whereIn("id", rows.map((r) => r.id)).del() : 0;
  return { subscriptionsDeleted, hooksLeft };
}

/** The subscription a delivery URL names, with its signing secret and where it came from; null when there is none in that environment and source. */
export async function subscriptionForDelivery(db: Knex, keyring: Keyring | null | undefined, target: { projectId: string; environmentId: string }, sourceId: string, id: string): Promise<{ secret: string; origin: WebhookSubscriptionOrigin } | null> {
  const row = (await joined(db).where({ "s.id": id, "s.environment_id": target.environmentId, "s.source_id": sourceId }).first()) as JoinedRow | undefined;
  if (!row) return null;
  const dataKey = (await dataKeyFor(db, keyring, target.projectId, { create: false }))!;
  return {
    secret: decryptSecret(dataKey, target.projectId, subscriptionSecretPlace(row.id), row.secret_encrypted),
    origin: { id: row.id, integration: row.slug, externalId: row.external_id === "" ? null : row.external_id, repository: row.repository },
  };
}

