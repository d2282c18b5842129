import type { Knex } from "knex";
import { DEPLOYMENT_TRANSITIONS, type BuildManifest, type DeploymentStatus, type DeploymentView } from "../../schemas/index.ts";
import { badRequest, conflict, notFound } from "../errors.ts";
import { createDeploymentWithNextVersion } from "../sql/allocate-version.ts";
import { notify } from "./notify.ts";
import { syncDeclarativeSchedules } from "../schedules/sync-declarative.ts";
import { checkManifestTriggers } from "./check-manifest-triggers.ts";
import { iso, type DeploymentRow } from "./rows.ts";

export interface DeployEnvironment {
  environmentId: string;
  environment: string;
  project: string;
}

async function promotedId(db: Knex | Knex.Transaction, environmentId: string): Promise<string | null> {
  const env = await db("environments").where({ id: environmentId }).first("promoted_deployment_id");
  return env?.promoted_deployment_id ?? null;
}

export async function toDeploymentView(db: Knex | Knex.Transaction, row: DeploymentRow, environment: string): Promise<DeploymentView> {
  return {
    id: row.id,
    environment,
    version: row.version,
    status: row.status as DeploymentStatus,
    imageRef: row.image_ref,
    imageDigest: row.image_digest,
    contentHash: (row.manifest as { contentHash?: string } | null)?.contentHash ?? null,
    tasks: row.tasks,
    promoted: (await promotedId(db, row.environment_id)) === row.id,
    commit: (row.commit as DeploymentView["commit"]) ?? null,
    failureReason: row.failure_reason,
    createdAt: row.created_at.toISOString(),
    deployedAt: iso(row.deployed_at),
    copiedFrom: ((row as DeploymentRow & { copied_from?: DeploymentView["copiedFrom"] }).copied_from as DeploymentView["copiedFrom"]) ?? null,
  };
}

function checkManifest(env: DeployEnvironment, manifest: BuildManifest): void {
  if (manifest.project !== env.project) throw badRequest(`manifest.project is ${manifest.project} but this API key belongs to project ${env.project}`, "manifest.project");
  const ids = new Set<string>();
  for (const t of manifest.tasks) {
    if (ids.has(t.id)) throw badRequest(`manifest.tasks has task id ${t.id} twice`, "manifest.tasks");
    ids.add(t.id);
  }
  checkManifestTriggers(manifest);
}

/**
 * Makes the environment point at a deployment and lets runs that waited for one of its tasks go.
 * Runs without a deployment lock to the promoted one when claimed, so only the promoted
 * deployment's tasks are released.
 */
export async function promoteDeployment(trx: Knex.Transaction, row: DeploymentRow): Promise<void> {
  if (row.status !== "DEPLOYED") throw conflict(`version ${row.version} is ${row.status}; only a DEPLOYED version can be promoted`);
  await trx("environments").where({ id: row.environment_id }).update({ promoted_deployment_id: row.id });
  await trx("promotions").insert({ environment_id: row.environment_id, deployment_id: row.id });
  await syncDeclarativeSchedules(trx, row.environment_id, row.manifest as BuildManifest | null);
  if (row.tasks.length > 0) {
    await trx("runs")
      .where({ status: "PENDING_VERSION", environment_id: row.environment_id })
      .whereNull("deployment_id")
      .whereIn("task_id", row.tasks)
      .update({ status: trx.raw("CASE WHEN available_at > now() THEN 'DELAYED' ELSE 'QUEUED' END"), expires_at: null });
  }
  await notify(trx, "runs");
  await notify(trx, "scheduler");
}

export async function createDeployment(db: Knex, env: DeployEnvironment, body: { imageRef: string; imageDigest: string; manifest: BuildManifest; commit?: unknown; promote: boolean }): Promise<DeploymentView> {
  checkManifest(env, body.manifest);
  const row = await createDeploymentWithNextVersion(db, {
    environmentId: env.environmentId,
    status: "DEPLOYED",
    values: { image_ref: body.imageRef, image_digest: body.imageDigest, manifest: body.manifest, tasks: body.manifest.tasks.map((t) => t.id), commit: body.commit },
    after: async (trx, inserted) => {
      if (body.promote) await promoteDeployment(trx, inserted);
    },
  });
  return await toDeploymentView(db, row, env.environment);
}

export async function startDeployment(db: Knex, env: DeployEnvironment, body: { commit?: unknown }): Promise<DeploymentView> {
  const row = await createDeploymentWithNextVersion(db, { environmentId: env.environmentId, status: "BUILDING", values: { commit: body.commit } });
  await notify(db, "scheduler");
  return await toDeploymentView(db, row, env.environment);
}

async function lockDeployment(trx: Knex.Transaction, env: DeployEnvironment, id: string): Promise<DeploymentRow> {
  const row = await trx<DeploymentRow>("deployments").where({ id, environment_id: env.environmentId }).forUpdate().first();
  if (!row) throw notFound(`deployment ${id} does not exist in environment ${env.environment}`, "id");
  return row;
}

function assertTransition(row: DeploymentRow, to: DeploymentStatus): void {
  if (!DEPLOYMENT_TRANSITIONS[row.status as DeploymentStatus].includes(to)) {
    throw conflict(`deployment ${row.version} is ${row.status} and cannot become ${to}`, "INVALID_TRANSITION");
  }
}

export async function heartbeatDeployment(db: Knex, env: DeployEnvironment, id: string): Promise<DeploymentView> {
  return await db.transaction(async (trx) => {
    const row = await lockDeployment(trx, env, id);
    if (row.status !== "BUILDING" && row.status !== "PENDING") throw conflict(`deployment ${row.version} is ${row.status}; only a building deployment takes heartbeats`, "INVALID_TRANSITION");
    const [updated] = await trx("deployments").where({ id }).update({ heartbeat_at: trx.fn.now() }).returning("*");
    return await toDeploymentView(trx, updated, env.environment);
  });
}

export async function finishDeployment(db: Knex, env: DeployEnvironment, id: string, body: { imageRef: string; imageDigest: string; manifest: BuildManifest; promote: boolean }): Promise<DeploymentView> {
  checkManifest(env, body.manifest);
  return await db.transaction(async (trx) => {
    const row = await lockDeployment(trx, env, id);
    assertTransition(row, "DEPLOYED");
    const [updated] = await trx("deployments")
      .where({ id, status: row.status })
      .update({
        status: "DEPLOYED",
        image_ref: body.imageRef,
        image_digest: body.imageDigest,
        manifest: JSON.stringify(body.manifest),
        tasks: body.manifest.tasks.map((t) => t.id),
        deployed_at: trx.fn.now(),
      })
      .returning("*");
    if (body.promote) await promoteDeployment(trx, updated);
    return await toDeploymentView(trx, updated, env.environment);
  });
}

export async function failDeployment(db: Knex, env: DeployEnvironment, id: string, body: { reason: string; status: "FAILED" | "CANCELED" }): Promise<DeploymentView> {
  return await db.transaction(async (trx) => {
    const row = await lockDeployment(trx, env, id);
    assertTransition(row, body.status);
    const [updated] = await trx("deployments").where({ id, status: row.status }).update({ status: body.status, failure_reason: body.reason }).returning("*");
    return await toDeploymentView(trx, updated, env.environment);
  });
}

export async function listDeployments(db: Knex, env: DeployEnvironment): Promise<DeploymentView[]> {
  const rows = await db<DeploymentRow>("deployments").where({ environment_id: env.environmentId }).orderBy([{ column: "version_date", order: "desc" }, { column: "version_n", order: "desc" }]).limit(200);
  return await Promise.all(rows.map((r) => toDeploymentView(db, r, env.environment)));
}

export async function getDeployment(db: Knex | Knex.Transaction, env: DeployEnvironment, version: string): Promise<DeploymentRow> {
  const row = await db<DeploymentRow>("deployments").where({ environment_id: env.environmentId, version }).first();
  if (!row) throw notFound(`version ${version} does not exist in environment ${env.environment}`, "version");
  return row;
}

export async function promoteVersion(db: Knex, env: DeployEnvironment, version: string): Promise<DeploymentView> {
  return await db.transaction(async (trx) => {
    await trx("environments").where({ id: env.environmentId }).forUpdate().first();
    const row = await getDeployment(trx, env, version);
    await promoteDeployment(trx, row);
    return await toDeploymentView(trx, row, env.environment);
  });
}

/** Back to the newest DEPLOYED version older than the promoted one that was ever promoted. No rebuild. */
export async function rollback(db: Knex, env: DeployEnvironment): Promise<DeploymentView> {
  return await db.transaction(async (trx) => {
    await trx("environments").where({ id: env.environmentId }).forUpdate().first();
    const currentId = await promotedId(trx, env.environmentId);
    if (!currentId) throw conflict(`environment ${env.environment} has no promoted version to roll back from`, "NOTHING_TO_ROLL_BACK");
    const current = await trx<DeploymentRow>("deployments").where({ id: currentId }).first();
    const previous = await trx<DeploymentRow>("deployments as d")
      .where("d.environment_id", env.environmentId)
      .where("d.status", "DEPLOYED")
      .whereRaw("(d.version_date, d.version_n) < (?, ?)", [current!.version_date, current!.version_n])
      .whereExists(trx("promotions as p").whereRaw("p.deployment_id = d.id"))
      .orderBy([{ column: "d.version_date", order: "desc" }, { column: "d.version_n", order: "desc" }])
      .first("d.*");
    if (!previous) throw conflict(`environment ${env.environment} has no earlier promoted version than ${current!.version}`, "NOTHING_TO_ROLL_BACK");
    await promoteDeployment(trx, previous);
    return await toDeploymentView(trx, previous, env.environment);
  });
}
