import type { FastifySchemaCompiler } from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import { z } from "zod";
import { findUnstorableInput } from "./storable-input.ts";

/** Input no route can take: NUL characters, lone surrogates, nesting past MAX_JSON_DEPTH. */
const StorableInput = z.unknown().superRefine((value, ctx) => {
  const problem = findUnstorableInput(value);
  if (problem) ctx.addIssue({ code: "custom", path: problem.path, message: problem.message, input: value });
});

/**
 * The zod validator of fastify-type-provider-zod, with every params, querystring and body first
 * checked for what PostgreSQL cannot store — one place, so every route (and every new one) refuses it
 * with a 400 naming the field instead of a 500 from the database.
 */
export const storableValidatorCompiler: FastifySchemaCompiler<z.ZodType> = (route) =>
  validatorCompiler({ ...route, schema: route.schema instanceof z.ZodType ? StorableInput.pipe(route.schema) : route.schema });
