import type { Knex } from "knex";

/** Projects, environments, keys, deployments, runs, attempts, logs, waitpoints, events, runners. */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    CREATE TABLE projects (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      slug text NOT NULL UNIQUE,
      repository text,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE environments (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      project_id uuid NOT NULL REFERENCES projects(id),
      slug text NOT NULL,
      archived_at timestamptz,
      promoted_deployment_id uuid,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (project_id, slug)
    );

    -- Only the sha256 of a key is stored; the key itself is shown once.
    CREATE TABLE api_keys (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      environment_id uuid NOT NULL REFERENCES environments(id),
      key_hash text NOT NULL UNIQUE,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    );

    CREATE TABLE deployments (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      environment_id uuid NOT NULL REFERENCES environments(id),
      version text NOT NULL,
      version_date integer NOT NULL,
      version_n integer NOT NULL,
      status text NOT NULL,
      image_ref text,
      image_digest text,
      manifest jsonb,
      tasks text[] NOT NULL DEFAULT '{}',
      commit jsonb,
      failure_reason text,
      heartbeat_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      deployed_at timestamptz,
      CONSTRAINT deployments_version_unique UNIQUE (environment_id, version),
      UNIQUE (environment_id, version_date, version_n)
    );
    CREATE INDEX deployments_building_heartbeat ON deployments (heartbeat_at) WHERE status IN ('PENDING', 'BUILDING');
    ALTER TABLE environments ADD CONSTRAINT environments_promoted_fk FOREIGN KEY (promoted_deployment_id) REFERENCES deployments(id);

    -- A deployed version is immutable: its image and manifest are what runs were pinned to.
    CREATE FUNCTION deployments_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF OLD.status = 'DEPLOYED' THEN
          RAISE EXCEPTION 'deployment % (version %) is DEPLOYED and cannot be deleted', OLD.id, OLD.version USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
      END IF;
      IF OLD.status = 'DEPLOYED' AND (
        NEW.status IS DISTINCT FROM OLD.status OR NEW.version IS DISTINCT FROM OLD.version
        OR NEW.image_digest IS DISTINCT FROM OLD.image_digest OR NEW.image_ref IS DISTINCT FROM OLD.image_ref
        OR NEW.manifest IS DISTINCT FROM OLD.manifest OR NEW.tasks IS DISTINCT FROM OLD.tasks
        OR NEW.environment_id IS DISTINCT FROM OLD.environment_id
      ) THEN
        RAISE EXCEPTION 'deployment % (version %) is DEPLOYED: its version, image and manifest never change', OLD.id, OLD.version USING ERRCODE = 'check_violation';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER deployments_immutable BEFORE UPDATE OR DELETE ON deployments FOR EACH ROW EXECUTE FUNCTION deployments_immutable();

    -- Promotion history, for rollback.
    CREATE TABLE promotions (
      id bigserial PRIMARY KEY,
      environment_id uuid NOT NULL REFERENCES environments(id),
      deployment_id uuid NOT NULL REFERENCES deployments(id),
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE runners (
      id text PRIMARY KEY,
      name text NOT NULL,
      capacity integer NOT NULL,
      checkpoints boolean NOT NULL,
      workload text NOT NULL,
      last_seen_at timestamptz NOT NULL DEFAULT now(),
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE runs (
      id text PRIMARY KEY,
      seq bigserial NOT NULL UNIQUE,
      environment_id uuid NOT NULL REFERENCES environments(id),
      task_id text NOT NULL,
      status text NOT NULL,
      payload jsonb,
      output jsonb,
      error jsonb,
      deployment_id uuid REFERENCES deployments(id),
      attempt_count integer NOT NULL DEFAULT 0,
      max_attempts integer,
      max_duration_s integer,
      tags text[] NOT NULL DEFAULT '{}',
      idempotency_key text,
      parent_run_id text REFERENCES runs(id),
      replay_of text REFERENCES runs(id),
      available_at timestamptz NOT NULL DEFAULT now(),
      runner_id text,
      lease_id text,
      lease_expires_at timestamptz,
      execution_ms bigint NOT NULL DEFAULT 0,
      execution_started_at timestamptz,
      deadline_at timestamptz,
      expires_at timestamptz,
      waitpoint_id text,
      checkpoint_location text,
      checkpoint_waitpoint_id text,
      resume jsonb,
      stop_pending boolean NOT NULL DEFAULT false,
      stop_reason text,
      log_seq bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      completed_at timestamptz
    );
    CREATE UNIQUE INDEX runs_idempotency ON runs (environment_id, task_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
    -- Claim: the claimable runs in due order.
    CREATE INDEX runs_claimable ON runs (available_at, seq) WHERE status IN ('QUEUED', 'DELAYED', 'RETRYING');
    CREATE INDEX runs_lease_due ON runs (lease_expires_at) WHERE status IN ('EXECUTING', 'WAITING');
    CREATE INDEX runs_deadline_due ON runs (deadline_at) WHERE status = 'EXECUTING';
    CREATE INDEX runs_pending_version ON runs (environment_id, task_id) WHERE status = 'PENDING_VERSION';
    CREATE INDEX runs_pending_expiry ON runs (expires_at) WHERE status = 'PENDING_VERSION';
    CREATE INDEX runs_runner_waiting ON runs (runner_id) WHERE status = 'WAITING';
    CREATE INDEX runs_stop_pending ON runs (runner_id) WHERE stop_pending;
    CREATE INDEX runs_list ON runs (environment_id, seq DESC);
    CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

    CREATE TABLE run_attempts (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      run_id text NOT NULL REFERENCES runs(id),
      number integer NOT NULL,
      status text NOT NULL,
      runner_id text,
      error jsonb,
      started_at timestamptz NOT NULL DEFAULT now(),
      ended_at timestamptz,
      UNIQUE (run_id, number)
    );

    CREATE TABLE run_logs (
      run_id text NOT NULL REFERENCES runs(id),
      seq bigint NOT NULL,
      ts timestamptz NOT NULL,
      level text NOT NULL,
      message text NOT NULL,
      attempt integer NOT NULL,
      data jsonb,
      PRIMARY KEY (run_id, seq)
    );

    CREATE TABLE waitpoints (
      id text PRIMARY KEY,
      environment_id uuid NOT NULL REFERENCES environments(id),
      run_id text REFERENCES runs(id),
      kind text NOT NULL,
      status text NOT NULL DEFAULT 'PENDING',
      spec jsonb NOT NULL,
      event_name text,
      filter jsonb,
      token_hash text UNIQUE,
      child_run_ids text[],
      due_at timestamptz,
      result jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      completed_at timestamptz
    );
    CREATE INDEX waitpoints_due ON waitpoints (due_at) WHERE status = 'PENDING' AND due_at IS NOT NULL;
    CREATE INDEX waitpoints_event ON waitpoints (environment_id, event_name) WHERE status = 'PENDING' AND kind = 'event';
    CREATE INDEX waitpoints_children ON waitpoints USING gin (child_run_ids) WHERE status = 'PENDING' AND kind = 'runs';

    CREATE TABLE events (
      environment_id uuid NOT NULL REFERENCES environments(id),
      id text NOT NULL,
      event text NOT NULL,
      payload jsonb,
      matched_waitpoints integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (environment_id, id)
    );

    -- Checkpoints of canceled suspended runs; runners drain this list and delete them from the store.
    CREATE TABLE checkpoints_to_delete (
      id bigserial PRIMARY KEY,
      location text NOT NULL,
      run_id text,
      created_at timestamptz NOT NULL DEFAULT now()
    );
  `);
}
