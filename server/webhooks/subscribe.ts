import { randomBytes } from "node:crypto";
import { emitterEventNames } from "@octokit/webhooks";
import type { SubscribeWebhookRequest, WebhookSubscriptionView } from "../../schemas/index.ts";
import type { EnvironmentPrincipal } from "../auth.ts";
import { findIntegrationRow, integrationNotFound } from "../connections/integrations.ts";
import { brokenError, markConnectionBroken, readToken } from "../connections/store.ts";
import type { Engine } from "../engine/context.ts";
import { newId } from "../engine/ids.ts";
import { StasisError, conflict } from "../errors.ts";
import { encryptSecret } from "../secrets/crypto.ts";
import { dataKeyFor } from "../secrets/data-keys.ts";
import { createHook, deleteHook, listHooks, GithubRefusal } from "./github-hooks.ts";
import { resolveWebhookTarget, sourcesOf, webhookUrl, type WebhookSource } from "./sources.ts";
import { subscriptionSecretPlace, subscriptionView } from "./subscriptions.ts";

/** Top-level GitHub event names a repository hook can send (`@octokit/webhooks`' list without the `.action` names). */
const GITHUB_HOOK_EVENTS = new Set<string>(emitterEventNames.filter((name) => !name.includes(".")));

/** The hook's events: the ones asked for (each must reach a task of the source), or those the source's tasks listen to. */
function hookEvents(source: WebhookSource, sourceId: string, asked: string[] | undefined): string[] {
  const listened = source.tasks.flatMap((t) => t.events);
  const listens = (event: string) => event === "*" || listened.some((e) => e === "*" || e === event || e.split(".")[0] === event);
  if (!asked) return listened.includes("*") ? ["*"] : [...new Set(listened.map((e) => e.split(".")[0]!))].sort();
  for (const event of asked) {
    if (event !== "*" && !GITHUB_HOOK_EVENTS.has(event)) throw new StasisError("BAD_REQUEST", 400, `events: ${event} is not a GitHub webhook event`, { field: "events" });
    if (!listens(event)) throw new StasisError("BAD_REQUEST", 400, `events: no task of source ${sourceId} listens to ${event} (its tasks listen to ${[...new Set(listened)].join(", ")})`, { field: "events" });
  }
  return [...new Set(asked)].sort();
}

/**
 * Subscribes a GitHub webhook source to a repository with a connection's token: creates the hook at
 * GitHub (its own URL and generated secret), then stores the subscription. Nothing is left half-made:
 * a refused create stores nothing; a create whose answer was lost (network, 5xx) is looked for among
 * the repository's hooks by its URL and deleted; a failed insert (a concurrent subscribe won the
 * unique key, the connection was revoked meanwhile) deletes the hook it made.
 */
export async function subscribeWebhook(engine: Engine, env: EnvironmentPrincipal, request: SubscribeWebhookRequest): Promise<WebhookSubscriptionView> {
  const { db, keyring } = engine;
  const target = await resolveWebhookTarget(db, env.project, env.environment);
  const source = sourcesOf(target.manifest).get(request.source);
  if (!source) {
    throw new StasisError("WEBHOOK_SOURCE_NOT_FOUND", 404, `webhook source ${request.source} is not declared by ${env.project}/${env.environment}'s promoted version${target.version ? ` ${target.version}` : " (nothing is promoted)"}`, { field: "source" });
  }
  if (source.trigger.provider !== "github") throw new StasisError("BAD_REQUEST", 400, `source ${request.source} is a ${source.trigger.provider} source: only github sources subscribe to repository webhooks`, { field: "source" });
  const integration = await findIntegrationRow(db, { environmentId: env.environmentId, slug: request.integration });
  if (!integration) throw integrationNotFound(env, request.integration);
  if (integration.provider !== "github" || !integration.metadata.api_url) {
    throw new StasisError("BAD_REQUEST", 400, `integration ${request.integration} is provider ${integration.provider}: repository webhooks need a github integration (with its API URL)`, { field: "integration" });
  }
  const apiUrl = integration.metadata.api_url;
  const events = hookEvents(source, request.source, request.events);
  // A broken or missing connection fails here (CONNECTION_BROKEN / CONNECTION_NOT_FOUND), before GitHub is asked.
  const token = await readToken(db, keyring, env, request.integration, request.externalId);
  const key = { environment_id: env.environmentId, source_id: request.source, connection_id: token.connectionId, repository: request.repository };
  const existing = await db("webhook_subscriptions").where(key).first("id");
  if (existing) throw conflict(`source ${request.source} is already subscribed to ${request.repository} with this connection (${existing.id})`, "WEBHOOK_SUBSCRIPTION_EXISTS");

  const id = newId("whs");
  const secret = randomBytes(32).toString("hex");
  const url = `${webhookUrl(engine.config.publicUrl, env.project, env.environment, request.source)}/${id}`;
  const who = token.account ?? (request.externalId ? `externalId ${request.externalId}` : "the team's connection");
  let hookId: number;
  try {
    hookId = (await createHook(apiUrl, token.accessToken, request.repository, { url, secret, events })).id;
  } catch (error) {
    if (!(error instanceof GithubRefusal)) throw error;
    if (error.status === 401) {
      const reason = `GitHub refused its access token (401 ${error.message}): the account revoked Stasis's access`;
      await markConnectionBroken(db, token.connectionId, reason);
      throw brokenError(request.integration, request.externalId ?? "", reason);
    }
    if (error.status === 404) {
      throw new StasisError("GITHUB_REPOSITORY_NOT_FOUND", 404, `GitHub answered 404 for ${request.repository}: it does not exist, or ${who} cannot manage its webhooks (needs admin rights and the admin:repo_hook scope)`, { field: "repository" });
    }
    if (error.status >= 400 && error.status < 500) {
      throw new StasisError("GITHUB_REFUSED", 400, `GitHub refused to create the hook on ${request.repository} (${error.status} ${error.message})`, { field: "repository" });
    }
    await removeHookByUrl(apiUrl, token.accessToken, request.repository, url);
    throw new StasisError("GITHUB_UNAVAILABLE", 502, `GitHub did not answer the hook creation on ${request.repository} (${error.status || "no response"}: ${error.message}); nothing was subscribed, try again`, { expose: true });
  }

  try {
    const inserted = await db.transaction(async (trx) => {
      const dataKey = (await dataKeyFor(trx, keyring, env.projectId, { create: true }))!;
      return await trx("webhook_subscriptions")
        .insert({ id, ...key, provider: "github", events, hook_id: hookId, secret_encrypted: encryptSecret(dataKey, env.projectId, subscriptionSecretPlace(id), secret) })
        .onConflict(["environment_id", "source_id", "connection_id", "repository"])
        .ignore()
        .returning("*");
    });
    if (inserted.length === 0) throw conflict(`source ${request.source} is already subscribed to ${request.repository} with this connection (a concurrent subscribe)`, "WEBHOOK_SUBSCRIPTION_EXISTS");
    return subscriptionView(engine.config.publicUrl, env, { ...inserted[0], slug: request.integration, external_id: request.externalId ?? "", account: token.account, status: "active" });
  } catch (error) {
    // No hook without a row: the one just made goes (best effort; a failure here is logged, not hidden).
    await deleteHook(apiUrl, token.accessToken, request.repository, hookId).catch((cleanup: Error) => {
      engine.logger.error({ subscription: id, repository: request.repository, hookId, err: cleanup.message }, "could not delete the hook of a subscription that was not stored");
    });
    throw error;
  }
}

/** After a create whose answer was lost: the hook may exist. Stasis's hook is the one with this subscription's URL. */
async function removeHookByUrl(apiUrl: string, token: string, repository: string, url: string): Promise<void> {
  const hooks = await listHooks(apiUrl, token, repository).catch(() => []);
  for (const hook of hooks) if (hook.config?.url === url) await deleteHook(apiUrl, token, repository, hook.id).catch(() => {});
}
