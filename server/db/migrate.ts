import type { Knex } from "knex";
import { SchemaTooNewError } from "../errors.ts";
import * as initial from "../migrations/001-initial.ts";
import * as deployTokens from "../migrations/002-deploy-tokens.ts";
import * as waitKeys from "../migrations/003-wait-keys.ts";
import * as environmentVariables from "../migrations/004-environment-variables.ts";
import * as projectDeployPolicy from "../migrations/005-project-deploy-policy.ts";
import * as checkpointSeals from "../migrations/006-checkpoint-seals.ts";
import * as environmentNumbers from "../migrations/007-environment-numbers.ts";
import * as dashboard from "../migrations/008-dashboard.ts";
import * as webhooksSchedules from "../migrations/009-webhooks-schedules.ts";
import * as checkpointWorkload from "../migrations/012-checkpoint-workload.ts";
import * as connections from "../migrations/013-connections.ts";
import * as webhookSubscriptions from "../migrations/014-webhook-subscriptions.ts";
import * as claimFreshRuns from "../migrations/015-claim-fresh-runs.ts";
import * as resumeHolder from "../migrations/017-resume-holder.ts";
import * as claimLockFunction from "../migrations/018-claim-lock-function.ts";
import * as checkpointSites from "../migrations/019-checkpoint-sites.ts";

interface Migration {
  id: number;
  name: string;
  up(trx: Knex.Transaction): Promise<void>;
}

/** Append-only: never edit or reorder an entry once committed; add a new one. */
export const MIGRATIONS: readonly Migration[] = [
  { id: 1, name: "initial", up: initial.up },
  { id: 2, name: "deploy-tokens", up: deployTokens.up },
  { id: 3, name: "wait-keys", up: waitKeys.up },
  { id: 4, name: "environment-variables", up: environmentVariables.up },
  { id: 5, name: "project-deploy-policy", up: projectDeployPolicy.up },
  { id: 6, name: "checkpoint-seals", up: checkpointSeals.up },
  { id: 7, name: "environment-numbers", up: environmentNumbers.up },
  // 10 and 11 are unused: ids only need to be unique and ascending.
  { id: 8, name: "dashboard", up: dashboard.up },
  { id: 9, name: "webhooks-schedules", up: webhooksSchedules.up },
  { id: 12, name: "checkpoint-workload", up: checkpointWorkload.up },
  { id: 13, name: "connections", up: connections.up },
  { id: 14, name: "webhook-subscriptions", up: webhookSubscriptions.up },
  { id: 15, name: "claim-fresh-runs", up: claimFreshRuns.up },
  { id: 17, name: "resume-holder", up: resumeHolder.up },
  { id: 18, name: "claim-lock-function", up: claimLockFunction.up },
  { id: 19, name: "checkpoint-sites", up: checkpointSites.up },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].id;

// Any constant works: it only has to be the same for every Stasis server migrating one database.
const MIGRATION_LOCK = 7_355_608;

/**
 * Applies the missing migrations, each in its own transaction under an advisory lock (several
 * server replicas may start at once). Refuses a database migrated by a newer Stasis.
 */
export async function migrate(db: Knex): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK]);
    await trx.raw(`CREATE TABLE IF NOT EXISTS stasis_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  });
  const latest = await currentSchemaVersion(db);
  if (latest > SCHEMA_VERSION) throw new SchemaTooNewError(latest, SCHEMA_VERSION);
  for (const migration of MIGRATIONS) {
    await db.transaction(async (trx) => {
      await trx.raw("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK]);
      const done = await trx("stasis_migrations").where({ id: migration.id }).first();
      if (done) return;
      await migration.up(trx);
      await trx("stasis_migrations").insert({ id: migration.id, name: migration.name });
    });
  }
}

export async function currentSchemaVersion(db: Knex): Promise<number> {
  const row = await db("stasis_migrations").max<{ max: number | null }>("id as max").first();
  return row?.max ?? 0;
}
