import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { EnvVarScope, RotateKeyResponse } from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";
import { notFound } from "../errors.ts";
import { findEnvironment } from "../projects.ts";
import { rotateMasterKey } from "../secrets/rotate-key.ts";
import { envVarErrors, mountEnvVarRoutes } from "./envvars.ts";

// The slug arrives URL-encoded (`preview%2Fpr-3`); `preview` names the set every preview inherits.
const ScopeParams = z.object({ project: z.string().min(1), env: EnvVarScope });

/** Admin: any environment's variables (and the shared `preview` set), and master key rotation. */
export async function adminEnvVarRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  mountEnvVarRoutes(root, engine, {
    prefix: "/api/v1/admin/projects/:project/environments/:env/envvars",
    auth: "admin",
    params: ScopeParams,
    target: async (request) => {
      const { project, env } = request.params as z.infer<typeof ScopeParams>;
      if (env === "preview") {
        const row = await engine.db("projects").where({ slug: project }).first("id");
        if (!row) throw notFound(`project ${project} does not exist`, "project");
        return { projectId: row.id, project, scope: env };
      }
      const found = await findEnvironment(engine.db, project, env);
      return { projectId: found.project_id, project, scope: env };
    },
  });

  const app = root.withTypeProvider<ZodTypeProvider>();
  app.post("/api/v1/admin/encryption/rotate-key", { config: { auth: "admin" }, schema: { response: { 200: RotateKeyResponse, ...envVarErrors } } }, async () => rotateMasterKey(engine.db, engine.keyring));
}
