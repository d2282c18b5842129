import type { Knex } from "knex";
import type { DeploymentView } from "../../schemas/index.ts";
import { conflict, notFound } from "../errors.ts";
import { createDeploymentWithNextVersion } from "../sql/allocate-version.ts";
import { promoteDeployment, toDeploymentView } from "./deployments.ts";
import type { DeploymentRow } from "./rows.ts";

export interface CopyDeploymentInput {
  project: string;
  version: string;
  from: string;
  to: string;
  promote: boolean;
}

/**
 * A deployed version of one environment becomes a new version of another environment of the same
 * project: the same image digest, image ref and manifest — nothing is rebuilt, so what was tested
 * in a preview is byte for byte what runs in production — under the target's own next `YYYYMMDD.N`,
 * with `copied_from` naming where it came from.
 */
export async function copyDeployment(db: Knex, input: CopyDeploymentInput): Promise<DeploymentView> {
  const envs = await db("environments as e").join("projects as p", "p.id", "e.project_id").where("p.slug", input.project).whereIn("e.slug", [input.from, input.to]).select("e.id", "e.slug", "e.archived_at");
  const source = envs.find((e) => e.slug === input.from);
  const target = envs.find((e) => e.slug === input.to);
  if (!source) throw notFound(`environment ${input.project}/${input.from} does not exist`, "from");
  if (!target) throw notFound(`environment ${input.project}/${input.to} does not exist`, "to");
  if (target.archived_at) throw conflict(`environment ${input.to} is archived`, "ENVIRONMENT_ARCHIVED");
  const original = await db<DeploymentRow>("deployments").where({ environment_id: source.id, version: input.version }).first();
  if (!original) throw notFound(`version ${input.version} does not exist in ${input.from}`, "version");
  if (original.status !== "DEPLOYED") throw conflict(`version ${input.version} of ${input.from} is ${original.status}; only a DEPLOYED version can be copied`, "INVALID_TRANSITION");
  const row = await createDeploymentWithNextVersion(db, {
    environmentId: target.id,
    status: "DEPLOYED",
    values: { image_ref: original.image_ref, image_digest: original.image_digest, manifest: original.manifest, tasks: original.tasks, commit: original.commit ?? undefined },
    after: async (trx, inserted) => {
      await trx("deployments").where({ id: inserted.id }).update({ copied_from: JSON.stringify({ environment: input.from, version: input.version }) });
      if (input.promote) await promoteDeployment(trx, inserted);
    },
  });
  const stored = await db<DeploymentRow>("deployments").where({ id: row.id }).first();
  return await toDeploymentView(db, stored!, input.to);
}
