import type { Knex } from "knex";
import { MAX_PAYLOAD_BYTES, type TriggerOptions, type TriggerResponse } from "../../schemas/index.ts";
import { conflict, notFound, StasisError } from "../errors.ts";
import { coalesce, coalescerPerDatabase } from "./coalesce.ts";
import { resolveDelay } from "./duration.ts";
import { newId } from "./ids.ts";
import { notify, notifyRunChanges } from "./notify.ts";
import type { DeploymentRow, RunRow } from "./rows.ts";
import { hotQuery } from "../db/prepared.ts";

export interface TriggerEnvironment {
  environmentId: string;
  environment: string;
  archived: boolean;
}

export interface TriggerRunInput {
  taskId: string;
  payload: unknown;
  options?: TriggerOptions;
  parentRunId?: string;
  replayOf?: string;
  /** Lock to this deployment (children of triggerAndWait run on their parent's version). */
  deploymentId?: string;
}

/** How long a run may wait for a deployment that contains its task. */
export const DEFAULT_PENDING_VERSION_TTL_MS = 24 * 60 * 60 * 1000;

export function assertPayloadSize(payload: unknown, field = "payload"): void {
  const bytes = Buffer.byteLength(JSON.stringify(payload ?? null) ?? "null");
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new StasisError("PAYLOAD_TOO_LARGE", 413, `${field} is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (3 MiB) of JSON`, { field });
  }
}

/**
 * Picks the run's starting state and deployment. A task that no deployment of the environment has
 * is unknown (404) — unless the environment has no deployment at all yet, then it waits.
 */
async function resolveTarget(trx: Knex.Transaction, env: TriggerEnvironment, input: TriggerRunInput): Promise<{ deploymentId: string | null; pending: boolean }> {
  const deployed = () => trx<DeploymentRow>("deployments").where({ environment_id: env.environmentId, status: "DEPLOYED" });
  if (input.deploymentId) {
    const d = await trx<DeploymentRow>("deployments").where({ id: input.deploymentId }).first();
    if (!d || !d.tasks.includes(input.taskId)) throw notFound(`task ${input.taskId} is not in version ${d?.version ?? "?"} of ${env.environment}`, "task");
    return { deploymentId: d.id, pending: false };
  }
  const version = input.options?.version;
  if (version) {
    const d = await deployed().andWhere({ version }).first();
    if (!d) throw notFound(`version ${version} does not exist in environment ${env.environment}`, "options.version");
    if (!d.tasks.includes(input.taskId)) throw notFound(`task ${input.taskId} is not in version ${version} of ${env.environment}`, "task");
    return { deploymentId: d.id, pending: false };
  }
  const promoted = await trx("environments as e").join("deployments as d", "d.id", "e.promoted_deployment_id").where("e.id", env.environmentId).first("d.tasks");
  if (promoted?.tasks.includes(input.taskId)) return { deploymentId: null, pending: false };
  const any = await deployed().first("id");
  if (!any) return { deploymentId: null, pending: true };
  const withTask = await deployed().whereRaw("? = ANY(tasks)", [input.taskId]).first("id");
  if (!withTask) throw notFound(`task ${input.taskId} does not exist in any deployment of environment ${env.environment}`, "task");
  return { deploymentId: null, pending: true };
}

/** The columns a run takes from its trigger input unchanged. */
function inputColumns(input: TriggerRunInput) {
  const options = input.options ?? {};
  return {
    task_id: input.taskId,
    payload: JSON.stringify(input.payload ?? null),
    max_attempts: options.maxAttempts ?? null,
    max_duration_s: options.maxDuration ?? null,
    tags: options.tags ?? [],
    idempotency_key: options.idempotencyKey ?? null,
    parent_run_id: input.parentRunId ?? null,
    replay_of: input.replayOf ?? null,
  };
}

/** One run's row, before the insert: the target is resolved and its id made. */
interface PlannedRun {
  id: string;
  status: "PENDING_VERSION" | "DELAYED" | "QUEUED";
  row: Record<string, unknown>;
  taskId: string;
  idempotencyKey: string | null;
}

/**
 * Triggers several runs in one transaction (the caller's, when `db` is one): targets are resolved
 * once per distinct (task, version, deployment), every row goes in with one multi-row INSERT, and
 * the runs an idempotency key already named are read back with one query. All or nothing: one bad
 * item (unknown task or version, payload too large) throws and leaves no run of the batch behind.
 * Answers in the order of `inputs`.
 */
export async function triggerRuns(db: Knex | Knex.Transaction, env: TriggerEnvironment, inputs: TriggerRunInput[], pendingTtlMs = DEFAULT_PENDING_VERSION_TTL_MS): Promise<TriggerResponse[]> {
  if (env.archived) throw conflict(`environment ${env.environment} is archived`, "ENVIRONMENT_ARCHIVED");
  for (const input of inputs) assertPayloadSize(input.payload);
  const quick = await quickTriggerRuns(db, env, inputs);
  if (quick) return quick;
  const run = async (trx: Knex.Transaction): Promise<TriggerResponse[]> => {
    const targets = new Map<string, Promise<{ deploymentId: string | null; pending: boolean }>>();
    const planned: PlannedRun[] = [];
    /** Per input: its planned row, or null when its key already named a run. */
    const plans: Array<PlannedRun | null> = [];
    const idempotent = (taskId: string, key: string | null | undefined) => JSON.stringify([taskId, key]);
    // A key that names an existing run answers with that run, before any check of the task.
    const keyed = inputs.filter((i) => i.options?.idempotencyKey);
    const existing = new Map<string, string>();
    const readExisting = async (pairs: Array<[string, string]>) => {
      if (pairs.length === 0) return;
      const rows = await trx("runs").where({ environment_id: env.environmentId }).whereIn(["task_id", "idempotency_key"], pairs).select("id", "task_id", "idempotency_key");
      for (const r of rows) existing.set(idempotent(r.task_id, r.idempotency_key), r.id);
    };
    await readExisting(keyed.map((i) => [i.taskId, i.options!.idempotencyKey!]));
    for (const input of inputs) {
      const options = input.options ?? {};
      if (options.idempotencyKey && existing.has(idempotent(input.taskId, options.idempotencyKey))) {
        plans.push(null);
        continue;
      }
      const due = resolveDelay(options.delay);
      const key = JSON.stringify([input.taskId, input.deploymentId ?? null, options.version ?? null]);
      if (!targets.has(key)) targets.set(key, resolveTarget(trx, env, input));
      const target = await targets.get(key)!;
      const delayed = due !== null && due.getTime() > Date.now();
      const status = target.pending ? "PENDING_VERSION" : delayed ? "DELAYED" : "QUEUED";
      const id = newId("run");
      plans.push({
        id,
        status,
        taskId: input.taskId,
        idempotencyKey: options.idempotencyKey ?? null,
        row: {
          id,
          environment_id: env.environmentId,
          ...inputColumns(input),
          status,
          deployment_id: target.deploymentId,
          available_at: due ?? trx.fn.now(),
          expires_at: target.pending ? new Date(Date.now() + pendingTtlMs) : null,
        },
      });
      planned.push(plans[plans.length - 1]!);
    }
    if (planned.length === 0) return plans.map((_, i) => ({ id: existing.get(idempotent(inputs[i].taskId, inputs[i].options?.idempotencyKey))!, isCached: true }));
    // A key a run of this environment and task already has: ON CONFLICT skips the row (also a
    // repeat inside this batch: the first one wins, as when the items were inserted one by one).
    const inserted = new Set(
      (
        await trx("runs")
          .insert(planned.map((p) => p.row))
          .onConflict(trx.raw("(environment_id, task_id, idempotency_key) WHERE idempotency_key IS NOT NULL"))
          .ignore()
          .returning("id")
      ).map((r: { id: string }) => r.id),
    );
    // Skipped rows: the key was taken by a concurrent trigger since we looked, or earlier in this batch.
    await readExisting(planned.filter((p) => !inserted.has(p.id) && !existing.has(idempotent(p.taskId, p.idempotencyKey))).map((p) => [p.taskId, p.idempotencyKey!]));
    const fresh = planned.filter((p) => inserted.has(p.id));
    await notifyRunChanges(trx, fresh.map((p) => ({ env: env.environmentId, run: p.id, what: p.status })));
    if (fresh.some((p) => p.status === "QUEUED")) await notify(trx, "runs");
    const scheduled = fresh.filter((p) => p.status !== "QUEUED").map((p) => (p.status === "DELAYED" ? (p.row.available_at as Date) : (p.row.expires_at as Date)).getTime());
    if (scheduled.length > 0) await notify(trx, "scheduler", Math.min(...scheduled));
    return plans.map((p, i) => (p && inserted.has(p.id) ? { id: p.id, isCached: false } : { id: existing.get(idempotent(inputs[i].taskId, inputs[i].options?.idempotencyKey))!, isCached: true }));
  };
  const trx = db as Partial<Knex.Transaction>;
  return trx.isTransaction ? await run(db as Knex.Transaction) : await (db as Knex).transaction(run);
}

/**
 * The common trigger in one statement: a run with no version, no delay, not locked to a deployment,
 * of a task its environment's promoted deployment has, goes straight in as QUEUED (autocommit: the
 * statement is the transaction). Triggers that arrive while such a statement runs go in the next one
 * together (coalesce.ts): one round trip and one commit for many requests under load, none added
 * when idle. The promoted deployment is checked per row inside the INSERT's SELECT, so a promotion
 * committed meanwhile is seen as in the full path. A row not written (the task is not promoted, or
 * the idempotency key exists) → the full path decides for that trigger.
 */
const QUICK_TRIGGERS_SQL = `
  INSERT INTO runs (id, environment_id, task_id, status, payload, max_attempts, max_duration_s, tags, idempotency_key, parent_run_id, replay_of, available_at)
  SELECT i.id, e.id, i.task_id, 'QUEUED', i.payload::jsonb, i.max_attempts, i.max_duration_s, COALESCE(i.tags, '{}'), i.idempotency_key, i.parent_run_id, i.replay_of, now()
  FROM jsonb_to_recordset(?::jsonb) AS i(ord int, id text, environment_id uuid, task_id text, payload text, max_attempts int, max_duration_s int, tags text[], idempotency_key text, parent_run_id text, replay_of text)
  JOIN environments e ON e.id = i.environment_id
  JOIN deployments d ON d.id = e.promoted_deployment_id
  WHERE i.task_id = ANY(d.tasks)
  ORDER BY i.ord
  ON CONFLICT (environment_id, task_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING id
`;

type QuickTriggerRow = Pick<RunRow, "id" | "environment_id"> & ReturnType<typeof inputColumns>;

/** Whether each row went in. One bad row must not fail the triggers it was grouped with: a failed group is retried row by row. */
async function insertQuickTriggers(db: Knex, rows: QuickTriggerRow[]): Promise<boolean[]> {
  const insert = async (group: QuickTriggerRow[]) => {
    const result = await hotQuery<{ id: string }>(db, "stasis_quick_triggers", QUICK_TRIGGERS_SQL, [JSON.stringify(group.map((row, ord) => ({ ord, ...row })))]);
    const written = new Set(result.rows.map((r) => r.id));
    const fresh = group.filter((r) => written.has(r.id));
    if (fresh.length > 0) {
      await notify(db, "runs");
      await notifyRunChanges(db, fresh.map((r) => ({ env: r.environment_id, run: r.id, what: "QUEUED" })));
    }
    return group.map((r) => written.has(r.id));
  };
  if (rows.length === 1) return await insert(rows);
  try {
    return await insert(rows);
  } catch {
    return (await Promise.all(rows.map((row) => insert([row])))).flat();
  }
}

/** 8 MiB of payloads per statement at most: a few 3 MiB payloads go in statements of their own. */
const QUICK_TRIGGER_BYTES = 8 * 1024 * 1024;
const quickTriggersOf = coalescerPerDatabase((db) => coalesce((rows: QuickTriggerRow[]) => insertQuickTriggers(db, rows), { maxItems: 500, maxWeight: QUICK_TRIGGER_BYTES, weight: (row) => row.payload.length }));

export async function triggerRun(db: Knex | Knex.Transaction, env: TriggerEnvironment, input: TriggerRunInput, pendingTtlMs = DEFAULT_PENDING_VERSION_TTL_MS): Promise<TriggerResponse> {
  const options = input.options ?? {};
  if (!env.archived && !(db as Partial<Knex.Transaction>).isTransaction && !input.deploymentId && options.version === undefined && options.delay === undefined) {
    assertPayloadSize(input.payload);
    const id = newId("run");
    const written = await quickTriggersOf(db as Knex).add({ id, environment_id: env.environmentId, ...inputColumns(input) });
    if (written) return { id, isCached: false };
  }
  const [response] = await triggerRuns(db, env, [input], pendingTtlMs);
  return response;
}

/**
 * A batch of plain items (no version, delay, idempotency key or deployment lock; the common
 * batchTrigger) in one statement and one round trip, as the single quick trigger: every item is
 * an element of one JSON array expanded with jsonb_to_recordset, and the promoted deployment must
 * hold every task of the batch (`tasks @> …`), else no row goes in and the full path decides (and
 * names the unknown task). Autocommit, all or nothing: the statement is the transaction. The full
 * path was BEGIN, the promoted deployment's look-up, the INSERT and COMMIT: four round trips, a
 * third of trigger → claimed in bench/trigger-latency/sql-trace.ts. Rows go in item order (`ord`),
 * so `seq` and the claim order follow the items.
 */
const QUICK_BATCH_SQL = `
  INSERT INTO runs (id, environment_id, task_id, status, payload, max_attempts, max_duration_s, tags, parent_run_id, replay_of, available_at)
  SELECT i.id, e.id, i.task_id, 'QUEUED', i.payload::jsonb, i.max_attempts, i.max_duration_s, COALESCE(i.tags, '{}'), i.parent_run_id, i.replay_of, now()
  FROM jsonb_to_recordset(?::jsonb) AS i(ord int, id text, task_id text, payload text, max_attempts int, max_duration_s int, tags text[], parent_run_id text, replay_of text)
  JOIN environments e ON e.id = ?
  JOIN deployments d ON d.id = e.promoted_deployment_id
  WHERE d.tasks @> ?::text[]
  ORDER BY i.ord
  RETURNING id
`;

async function quickTriggerRuns(db: Knex | Knex.Transaction, env: TriggerEnvironment, inputs: TriggerRunInput[]): Promise<TriggerResponse[] | null> {
  if ((db as Partial<Knex.Transaction>).isTransaction) return null;
  const plain = inputs.every((i) => !i.deploymentId && i.options?.version === undefined && i.options?.delay === undefined && i.options?.idempotencyKey === undefined);
  if (!plain || inputs.length === 0) return null;
  const rows = inputs.map((input, ord) => ({ ord, id: newId("run"), ...inputColumns(input) }));
  const result = await hotQuery<{ id: string }>(db, "stasis_quick_batch", QUICK_BATCH_SQL, [JSON.stringify(rows), env.environmentId, [...new Set(inputs.map((i) => i.taskId))]]);
  if (result.rows.length === 0) return null;
  // All or nothing: the only filter is on the deployment, which is the same for every row.
  if (result.rows.length !== rows.length) throw new StasisError("INTERNAL", 500, `batch trigger wrote ${result.rows.length} of ${rows.length} rows`);
  await notify(db, "runs");
  await notifyRunChanges(db, rows.map((r) => ({ env: env.environmentId, run: r.id, what: "QUEUED" })));
  return rows.map((r) => ({ id: r.id, isCached: false }));
}
