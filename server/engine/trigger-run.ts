import type { Knex } from "knex";
import { MAX_PAYLOAD_BYTES, type TriggerOptions, type TriggerResponse } from "../../schemas/index.ts";
import { conflict, notFound, StasisError } from "../errors.ts";
import { resolveDelay } from "./duration.ts";
import { newId } from "./ids.ts";
import { notify } from "./notify.ts";
import { notifyRunChange } from "./run-changes.ts";
import type { DeploymentRow } from "./rows.ts";

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

export async function triggerRun(db: Knex, env: TriggerEnvironment, input: TriggerRunInput, pendingTtlMs = DEFAULT_PENDING_VERSION_TTL_MS): Promise<TriggerResponse> {
  if (env.archived) throw conflict(`environment ${env.environment} is archived`, "ENVIRONMENT_ARCHIVED");
  assertPayloadSize(input.payload);
  const options = input.options ?? {};
  const due = resolveDelay(options.delay);
  return await db.transaction(async (trx) => {
    if (options.idempotencyKey) {
      const existing = await trx("runs").where({ environment_id: env.environmentId, task_id: input.taskId, idempotency_key: options.idempotencyKey }).first("id");
      if (existing) return { id: existing.id, isCached: true };
    }
    const target = await resolveTarget(trx, env, input);
    const delayed = due !== null && due.getTime() > Date.now();
    const status = target.pending ? "PENDING_VERSION" : delayed ? "DELAYED" : "QUEUED";
    const id = newId("run");
    const inserted = await trx("runs")
      .insert({
        id,
        environment_id: env.environmentId,
        task_id: input.taskId,
        status,
        payload: JSON.stringify(input.payload ?? null),
        deployment_id: target.deploymentId,
        max_attempts: options.maxAttempts ?? null,
        max_duration_s: options.maxDuration ?? null,
        tags: options.tags ?? [],
        idempotency_key: options.idempotencyKey ?? null,
        parent_run_id: input.parentRunId ?? null,
        replay_of: input.replayOf ?? null,
        available_at: due ?? trx.fn.now(),
        expires_at: target.pending ? new Date(Date.now() + pendingTtlMs) : null,
      })
      .onConflict(trx.raw("(environment_id, task_id, idempotency_key) WHERE idempotency_key IS NOT NULL"))
      .ignore()
      .returning("id");
    if (inserted.length === 0) {
      const existing = await trx("runs").where({ environment_id: env.environmentId, task_id: input.taskId, idempotency_key: options.idempotencyKey }).first("id");
      return { id: existing.id, isCached: true };
    }
    await notify(trx, status === "QUEUED" ? "runs" : "scheduler");
    await notifyRunChange(trx, { env: env.environmentId, run: id, what: status });
    return { id, isCached: false };
  });
}
