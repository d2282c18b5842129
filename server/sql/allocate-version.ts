import type { Knex } from "knex";
import { VersionAllocationError } from "../errors.ts";
import type { DeploymentRow } from "../engine/rows.ts";

/**
 * Versions are `YYYYMMDD.N`, N counted per environment per UTC day. Two deploys racing for the
 * same environment both read the same max(N); the UNIQUE (environment_id, version) constraint lets
 * exactly one insert win, and the loser retries with a fresh read. No table lock, no sequence per
 * environment: collisions only happen between concurrent deploys of one environment, which are rare
 * and cheap to retry (10 parallel deploys settle within a few retries each).
 *
 *   INSERT INTO deployments (…, version, version_date, version_n)
 *   SELECT …, $date || '.' || (coalesce(max(version_n), 0) + 1), $date, coalesce(max(version_n), 0) + 1
 *   FROM deployments WHERE environment_id = $env AND version_date = $date
 *
 * Each attempt runs in its own transaction (a unique violation aborts a PostgreSQL transaction).
 */
export const MAX_VERSION_ATTEMPTS = 20;

export function utcDate(now: Date): number {
  return now.getUTCFullYear() * 10_000 + (now.getUTCMonth() + 1) * 100 + now.getUTCDate();
}

export interface AllocateVersionInput {
  environmentId: string;
  status: "PENDING" | "BUILDING" | "DEPLOYED";
  values: Record<string, unknown>;
  now?: () => Date;
  /** Runs inside the insert's transaction (promotion, re-queueing runs). */
  after?: (trx: Knex.Transaction, row: DeploymentRow) => Promise<void>;
}

export async function createDeploymentWithNextVersion(db: Knex, input: AllocateVersionInput): Promise<DeploymentRow> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= MAX_VERSION_ATTEMPTS; attempt++) {
    const date = utcDate((input.now ?? (() => new Date()))());
    try {
      return await db.transaction(async (trx) => {
        const result = await trx.raw(
          `INSERT INTO deployments (environment_id, status, version, version_date, version_n, image_ref, image_digest, manifest, tasks, commit, heartbeat_at, deployed_at)
           SELECT CAST(:env AS uuid), CAST(:status AS text), CAST(:date AS text) || '.' || (coalesce(max(version_n), 0) + 1), CAST(:date AS integer), coalesce(max(version_n), 0) + 1,
                  CAST(:imageRef AS text), CAST(:imageDigest AS text), CAST(:manifest AS jsonb), ARRAY(SELECT jsonb_array_elements_text(CAST(:tasks AS jsonb))), CAST(:commit AS jsonb),
                  now(), CASE WHEN CAST(:status AS text) = 'DEPLOYED' THEN now() END
           FROM deployments WHERE environment_id = CAST(:env AS uuid) AND version_date = CAST(:date AS integer)
           RETURNING *`,
          {
            env: input.environmentId,
            status: input.status,
            date,
            imageRef: (input.values.image_ref as string | null) ?? null,
            imageDigest: (input.values.image_digest as string | null) ?? null,
            manifest: input.values.manifest === undefined ? null : JSON.stringify(input.values.manifest),
            tasks: JSON.stringify((input.values.tasks as string[]) ?? []),
            commit: input.values.commit === undefined ? null : JSON.stringify(input.values.commit),
          },
        );
        const row = result.rows[0] as DeploymentRow;
        await input.after?.(trx, row);
        return row;
      });
    } catch (error) {
      if ((error as { code?: string }).code !== "23505") throw error;
      lastError = error;
    }
  }
  throw new VersionAllocationError(input.environmentId, MAX_VERSION_ATTEMPTS, { cause: lastError });
}
