import type { Knex } from "knex";

/**
 * Webhook deliveries (every one recorded, refused ones without their body) and cron schedules with
 * one row per (schedule, tick): the row is what makes a tick start exactly one run, whatever number
 * of server replicas sweep and however often they restart.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    CREATE TABLE webhook_deliveries (
      id text PRIMARY KEY,
      environment_id uuid NOT NULL REFERENCES environments(id),
      source_id text NOT NULL,
      provider text NOT NULL,
      status text NOT NULL CHECK (status IN ('ACCEPTED', 'DUPLICATE', 'REJECTED')),
      event_id text,
      event_type text,
      verified boolean NOT NULL,
      failure text,
      payload jsonb,
      run_ids text[] NOT NULL DEFAULT '{}',
      received_at timestamptz NOT NULL DEFAULT now()
    );
    -- Deduplication: one accepted delivery per provider event id and source; a redelivery is recorded as DUPLICATE.
    CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (environment_id, source_id, event_id) WHERE status = 'ACCEPTED';
    CREATE INDEX webhook_deliveries_list ON webhook_deliveries (environment_id, source_id, received_at DESC);

    CREATE TABLE schedules (
      id text PRIMARY KEY,
      environment_id uuid NOT NULL REFERENCES environments(id),
      task_id text NOT NULL,
      type text NOT NULL CHECK (type IN ('DECLARATIVE', 'IMPERATIVE')),
      cron text NOT NULL,
      timezone text NOT NULL,
      external_id text,
      deduplication_key text,
      active boolean NOT NULL DEFAULT true,
      -- NULL while active: the scheduler computes it from its clock at its next sweep (a promote sets no time).
      next_run_at timestamptz,
      last_tick_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX schedules_declarative ON schedules (environment_id, task_id) WHERE type = 'DECLARATIVE';
    CREATE UNIQUE INDEX schedules_dedup ON schedules (environment_id, deduplication_key) WHERE deduplication_key IS NOT NULL;
    CREATE INDEX schedules_due ON schedules (next_run_at NULLS FIRST) WHERE active;

    CREATE TABLE schedule_ticks (
      schedule_id text NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
      tick_at timestamptz NOT NULL,
      run_id text,
      error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (schedule_id, tick_at)
    );
  `);
}
