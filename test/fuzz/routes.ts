// The routes to fuzz come from the app itself (StasisServer.routes, an onRoute hook), so a route added
// tomorrow is fuzzed without touching this folder. A route the fuzzer cannot derive input for fails.
import { z } from "zod";
import type { RouteInfo } from "../../server/index.ts";
import { arbitraryFor, UnsupportedSchemaError } from "./zod-arbitrary.ts";

export type RouteAuth = "admin" | "env" | "runner" | "none";

export interface FuzzRoute {
  methods: string[];
  url: string;
  auth: RouteAuth;
  paramNames: string[];
  params?: z.ZodObject;
  querystring?: z.ZodType;
  body?: z.ZodType;
}

export class RouteNotFuzzableError extends Error {
  constructor(problems: string[]) {
    super(`routes the fuzzer cannot derive input for (give them zod schemas):\n  ${problems.join("\n  ")}`);
    this.name = "RouteNotFuzzableError";
  }
}

function zodOrProblem(value: unknown, what: string, problems: string[]): z.ZodType | undefined {
  if (value === undefined) return undefined;
  if (value instanceof z.ZodType) {
    try {
      arbitraryFor(value);
    } catch (error) {
      if (error instanceof UnsupportedSchemaError) problems.push(`${what}: ${error.message}`);
      else throw error;
    }
    return value;
  }
  problems.push(`${what}: the schema is not a zod schema`);
  return undefined;
}

/** Every route with the schemas it declares; throws when a path parameter or a schema is unusable. */
export function discoverRoutes(routes: readonly RouteInfo[]): FuzzRoute[] {
  const problems: string[] = [];
  const out: FuzzRoute[] = [];
  for (const route of routes) {
    const name = `${route.methods.join(",")} ${route.url}`;
    const paramNames = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
    if (/\*/.test(route.url)) problems.push(`${name}: wildcard routes have no parameter schema to fuzz`);
    const params = zodOrProblem(route.schema?.params, `${name} params`, problems);
    const querystring = zodOrProblem(route.schema?.querystring, `${name} querystring`, problems);
    const body = zodOrProblem(route.schema?.body, `${name} body`, problems);
    if (params && !(params instanceof z.ZodObject)) problems.push(`${name}: params schema is not a z.object`);
    for (const p of paramNames) {
      if (!(params instanceof z.ZodObject) || !(p in params.shape)) problems.push(`${name}: path parameter :${p} has no params schema`);
    }
    const auth = (route.auth ?? "admin") as RouteAuth;
    if (!["admin", "env", "runner", "none"].includes(auth)) problems.push(`${name}: unknown auth kind ${auth}`);
    out.push({ methods: route.methods, url: route.url, auth, paramNames, params: params as z.ZodObject | undefined, querystring, body });
  }
  if (problems.length) throw new RouteNotFuzzableError(problems);
  return out;
}

export function routeName(route: FuzzRoute): string {
  return `${route.methods.join(",")} ${route.url}`;
}
