import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import {
  ApiErrorBody,
  DeleteEnvVarResponse,
  EnvVarListQuery,
  EnvVarListResponse,
  EnvVarName,
  EnvVarView,
  ImportEnvVarsRequest,
  SetEnvVarRequest,
  SetEnvVarsRequest,
  SetEnvVarsResponse,
} from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";
import { envOf } from "../http/auth-hook.ts";
import { deleteVariable, getVariable, listVariables, setVariables, type EnvVarTarget } from "../secrets/envvar-store.ts";

export const envVarErrors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody };
export const NameParams = z.object({ name: EnvVarName });

/**
 * The variables of one scope, for a resolver that says which scope the caller may use. Mounted
 * twice: under `/api/v1/envvars` for an environment API key (always its own environment), and
 * under the admin prefix for any environment of any project (server/routes/envvars-admin.ts).
 */
export function mountEnvVarRoutes(
  app: FastifyInstance,
  engine: Engine,
  spec: { prefix: string; auth: "env" | "admin"; params?: z.ZodObject; target(request: FastifyRequest): Promise<EnvVarTarget> },
): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const config = { auth: spec.auth };
  const params = spec.params ?? z.object({});
  const withName = params.extend(NameParams.shape);
  const view = (target: EnvVarTarget) => ({ project: target.project, environment: target.scope });

  typed.get(spec.prefix, { config, schema: { params, querystring: EnvVarListQuery, response: { 200: EnvVarListResponse, ...envVarErrors } } }, async (request) => {
    const target = await spec.target(request);
    return { ...view(target), data: await listVariables(engine.db, engine.keyring, target, request.query.reveal === "true") };
  });

  typed.get(`${spec.prefix}/:name`, { config, schema: { params: withName, response: { 200: EnvVarView, ...envVarErrors } } }, async (request) => {
    const target = await spec.target(request);
    return await getVariable(engine.db, engine.keyring, target, (request.params as { name: string }).name);
  });

  typed.post(spec.prefix, { config, schema: { params, body: SetEnvVarsRequest, response: { 200: SetEnvVarsResponse, ...envVarErrors } } }, async (request) => {
    const target = await spec.target(request);
    const result = await setVariables(engine.db, engine.keyring, target, request.body.variables);
    return { ...view(target), set: result.set };
  });

  typed.put(`${spec.prefix}/:name`, { config, schema: { params: withName, body: SetEnvVarRequest, response: { 200: SetEnvVarsResponse, ...envVarErrors } } }, async (request) => {
    const target = await spec.target(request);
    const name = (request.params as { name: string }).name;
    const result = await setVariables(engine.db, engine.keyring, target, { [name]: request.body.value });
    return { ...view(target), set: result.set };
  });

  typed.post(`${spec.prefix}/import`, { config, schema: { params, body: ImportEnvVarsRequest, response: { 200: SetEnvVarsResponse, ...envVarErrors } } }, async (request) => {
    const target = await spec.target(request);
    const result = await setVariables(engine.db, engine.keyring, target, request.body.variables, { replace: request.body.replace });
    return { ...view(target), set: result.set, deleted: result.deleted };
  });

  typed.delete(`${spec.prefix}/:name`, { config, schema: { params: withName, response: { 200: DeleteEnvVarResponse, ...envVarErrors } } }, async (request) => {
    const target = await spec.target(request);
    return { ...view(target), deleted: await deleteVariable(engine.db, target, (request.params as { name: string }).name) };
  });
}

/** `/api/v1/envvars`: the caller's own environment, by its API key; no way to name another. */
export async function envVarRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  mountEnvVarRoutes(root, engine, {
    prefix: "/api/v1/envvars",
    auth: "env",
    target: async (request) => {
      const principal = envOf(request);
      return { projectId: principal.projectId, project: principal.project, scope: principal.environment };
    },
  });
}
