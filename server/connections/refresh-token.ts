import { randomUUID } from "node:crypto";
import type { Knex } from "knex";
import * as oidc from "openid-client";
import { StasisError } from "../errors.ts";
import { decryptSecret, encryptSecret } from "../secrets/crypto.ts";
import type { Keyring } from "../secrets/keyring.ts";
import { loadIntegration, type IntegrationRow } from "./integrations.ts";
import { clientConfig, oauthErrorCode } from "./oauth-client.ts";

/** Where a connection's token is encrypted (AAD): integration, external id, field. */
export const connectionPlace = (row: { integration_id: string; external_id: string }, field: string) => ["connection", row.integration_id, row.external_id, field] as const;

/** The columns a refresh reads and writes (a `connections` row). */
export interface RefreshableRow {
  id: string;
  integration_id: string;
  external_id: string;
  refresh_token_encrypted: Buffer | null;
  obtained_at: Date;
  expires_at: Date | null;
  status: "active" | "broken";
  broken_reason: string | null;
}

export type RefreshOutcome<R> = { row: R } | { broken: string | null } | { gone: true };

/** Longer than openid-client's 15 s timeout: a lease only runs out when its holder died. */
const LEASE_SECONDS = 60;
/** How long a caller waits for another caller's refresh before giving up. */
const WAIT_MS = 70_000;
const LOOK_EVERY_MS = 50;

/**
 * One refresh of a stale connection, without holding a database connection while the provider is
 * asked. A refresh lease on the row is taken by compare-and-set (`refresh_lease_until` empty or past):
 * exactly one caller across replicas wins it and calls the provider; the others look at the row every
 * 50 ms until it is fresh, broken or gone (or the lease ran out: its holder died, and one of them takes
 * it). The winner's writes are fenced by its lease id. Callers on one replica already share one refresh
 * (`singleFlight` in store.ts), so a burst costs one lease attempt per replica.
 */
export async function refreshUnderLease<R extends RefreshableRow>(
  db: Knex,
  keyring: Keyring | null | undefined,
  projectId: string,
  integrationRow: IntegrationRow,
  dataKey: Buffer,
  id: string,
  stale: (row: R, now: Date) => boolean,
): Promise<RefreshOutcome<R>> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const lease = randomUUID();
    const [claimed] = (await db("connections")
      .where({ id, status: "active" })
      .where((q) => q.whereNull("refresh_lease_until").orWhere("refresh_lease_until", "<", db.fn.now()))
      .update({ refresh_lease: lease, refresh_lease_until: db.raw("now() + make_interval(secs => ?)", [LEASE_SECONDS]) })
      .returning(["*", db.raw("now() AS db_now")])) as Array<R & { db_now: Date }>;
    if (claimed) return await refreshClaimed(db, keyring, projectId, integrationRow, dataKey, claimed, lease, stale);
    const current = (await db("connections").where({ id }).first()) as R | undefined;
    if (!current) return { gone: true };
    if (current.status === "broken") return { broken: current.broken_reason };
    if (!stale(current, new Date())) return { row: current };
    if (Date.now() > deadline) throw new StasisError("CONNECTION_REFRESH_FAILED", 502, `another refresh of this connection did not finish within ${WAIT_MS / 1000} s; try again`, { expose: true });
    await new Promise((resolve) => setTimeout(resolve, LOOK_EVERY_MS));
  }
}

async function refreshClaimed<R extends RefreshableRow>(
  db: Knex,
  keyring: Keyring | null | undefined,
  projectId: string,
  integrationRow: IntegrationRow,
  dataKey: Buffer,
  claimed: R & { db_now: Date },
  lease: string,
  stale: (row: R, now: Date) => boolean,
): Promise<RefreshOutcome<R>> {
  const mine = () => db("connections").where({ id: claimed.id, refresh_lease: lease });
  const release = { refresh_lease: null, refresh_lease_until: null };
  // Someone refreshed between our read and our claim: nothing to do.
  if (!stale(claimed, claimed.db_now)) {
    await mine().update(release);
    return { row: claimed };
  }
  let tokens: oidc.TokenEndpointResponse;
  try {
    const integration = await loadIntegration(db, keyring, projectId, integrationRow);
    const refreshToken = decryptSecret(dataKey, projectId, connectionPlace(claimed, "refresh_token"), claimed.refresh_token_encrypted!);
    tokens = await oidc.refreshTokenGrant(clientConfig(integration), refreshToken);
  } catch (error) {
    const code = oauthErrorCode(error);
    if (code !== "invalid_grant") {
      await mine().update(release);
      throw new StasisError("CONNECTION_REFRESH_FAILED", 502, `refreshing the token of ${integrationRow.slug} failed at the provider (${code ?? (error as Error).message}); the connection is kept, try again`, { expose: true });
    }
    const reason = `the provider refused its refresh token (invalid_grant: ${(error as { error_description?: string }).error_description ?? "revoked or expired"})`;
    await mine().update({ ...release, status: "broken", broken_reason: reason, updated_at: db.fn.now() });
    return { broken: reason };
  }
  const [updated] = (await mine()
    .update({
      ...release,
      access_token_encrypted: encryptSecret(dataKey, projectId, connectionPlace(claimed, "access_token"), tokens.access_token),
      // Rotation: the provider may hand a new refresh token; otherwise the old one stays.
      ...(tokens.refresh_token ? { refresh_token_encrypted: encryptSecret(dataKey, projectId, connectionPlace(claimed, "refresh_token"), tokens.refresh_token) } : {}),
      obtained_at: db.fn.now(),
      expires_at: typeof tokens.expires_in === "number" ? db.raw("now() + make_interval(secs => ?)", [tokens.expires_in]) : null,
      ...(tokens.scope ? { scopes: tokens.scope.split(" ").filter(Boolean) } : {}),
      last_refresh_at: db.fn.now(),
      refresh_count: db.raw("refresh_count + 1"),
      updated_at: db.fn.now(),
    })
    .returning("*")) as R[];
  if (!updated) {
    const current = (await db("connections").where({ id: claimed.id }).first()) as R | undefined;
    if (!current) return { gone: true };
    throw new StasisError("CONNECTION_REFRESH_FAILED", 502, `the refresh of ${integrationRow.slug} outlived its ${LEASE_SECONDS} s lease; try again`, { expose: true });
  }
  return { row: updated };
}
