// One generated request = a small recipe (printable, seed-reproducible) → the bytes app.inject sends.
import fc from "fast-check";
import { findUnstorableInput } from "../../server/index.ts";
import type { CredentialKind, FuzzStack } from "./fuzz-stack.ts";
import { applyMutation, fieldOf, mutationOf, serializeBody, type Mutation } from "./mutations.ts";
import type { FuzzRoute } from "./routes.ts";
import { arbitraryFor, jsonValue, type ArbitraryOptions } from "./zod-arbitrary.ts";

export type CredentialRecipe = "right" | "none" | "wrong-env-key" | "wrong-deploy-token" | "wrong-bearer" | "malformed" | CredentialKind;

export type PartRecipe =
  | { kind: "none" }
  | { kind: "valid"; value: unknown }
  | { kind: "mutated"; value: unknown; mutation: Mutation }
  | { kind: "json"; value: unknown }
  | { kind: "raw"; text: string };

export interface RequestRecipe {
  method: string;
  credential: CredentialRecipe;
  params: Record<string, { value: string } | { odd: string }>;
  query: PartRecipe;
  body: PartRecipe;
  contentType: string | null;
  /** Send the values of one harvested tuple (a run id with its lease) in the fields of the same names. */
  link: number | null;
}

export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
  /** Set when the request carries the right credential and exactly one body field was made wrong. */
  wrongBodyField?: string;
  /** Bytes of the body, for the report. */
  bodyBytes: number;
}

/** Path parameters as they reach routers badly: traversal, encoded slashes, bad escapes, long, unicode, empty. */
export const ODD_PARAMS = ["..", ".", "%2e%2e", "%2F", "a%2Fb", "..%2F..%2Fadmin", "%00", "%ZZ", "%", "%C0%AF", "%F0%9F%98%80", "%E2%80%AE", "", "%20", "null", "-1", "1e309", "x".repeat(499), "x".repeat(501), "x".repeat(5000), "%FF%FE", "preview%2F..%2F..", "üñí", "'%3B--"];

export const ODD_QUERIES = ["?", "?&&&", "?a", "?limit=", "?limit=%ZZ", "?__proto__[polluted]=1", "?constructor[prototype][x]=1", "?limit=1&limit=2", "?" + "a=1&".repeat(2000), "?status=%F0%9F%98%80", "?x=%00", "?limit=1e400", "?after=-1", "?waitMs=99999999999999999999", "?cursor=" + "%FF".repeat(50), "?status[]=QUEUED"];

const CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16", "application/JSON", "application/json; charset=latin1", "application/vnd.api+json", "garbage", "application/octet-stream", "application/json, text/plain", ";;;"];

const RAW_BODIES = ["", "null", "{", '{"a":', "[]", '"string"', "123", "true", "{}{}", "\u0000", "\ufeff{}", '{"__proto__":{"polluted":true}}', '{"constructor":{"prototype":{"x":1}}}', '{"a":1,"a":2}', "[".repeat(10_000), "[".repeat(10_000) + "]".repeat(10_000), '{"a":'.repeat(5000) + "1" + "}".repeat(5000), "NaN", "1e999", "\ud800"];

function partOf(schema: FuzzRoute["body"], options: ArbitraryOptions, extra: fc.Arbitrary<PartRecipe>[]): fc.Arbitrary<PartRecipe> {
  if (!schema) return fc.oneof({ weight: 6, arbitrary: fc.constant({ kind: "none" as const }) }, ...extra.map((arbitrary) => ({ weight: 1, arbitrary })));
  const valid = arbitraryFor(schema, options);
  return fc.oneof(
    { weight: 9, arbitrary: valid.map((value) => ({ kind: "valid" as const, value })) },
    { weight: 9, arbitrary: valid.chain((value) => mutationOf(value).map((mutation) => ({ kind: "mutated" as const, value, mutation }))) },
    { weight: 1, arbitrary: fc.constant({ kind: "none" as const }) },
    ...extra.map((arbitrary) => ({ weight: 1, arbitrary })),
  );
}

/** What to send to a route: mostly with the right credential and a (mutated) valid body. */
export function requestRecipe(route: FuzzRoute, stack: FuzzStack): fc.Arbitrary<RequestRecipe> {
  const options: ArbitraryOptions = { dictionary: stack.dictionary, overrides: { waitMs: fc.integer({ min: 0, max: 20 }) } };
  const params: Record<string, fc.Arbitrary<{ value: string } | { odd: string }>> = {};
  for (const name of route.paramNames) {
    const shape = route.params!.shape as Record<string, import("zod").ZodType>;
    const valid = arbitraryFor(shape[name], options).map((v) => ({ value: String(v) }));
    const known = stack.dictionary[name];
    const fromDictionary = known ? fc.nat().map((i) => known()).chain((list) => (list.length ? fc.constantFrom(...list).map((v) => ({ value: String(v) })) : valid)) : valid;
    params[name] = fc.oneof({ weight: 4, arbitrary: fromDictionary }, { weight: 3, arbitrary: valid }, { weight: 2, arbitrary: fc.constantFrom(...ODD_PARAMS).map((odd) => ({ odd })) });
  }
  const rawBody = fc.constantFrom(...RAW_BODIES).map((text) => ({ kind: "raw" as const, text }));
  const jsonBody = jsonValue(4).map((value) => ({ kind: "json" as const, value }));
  const credential = fc.oneof(
    { weight: 30, arbitrary: fc.constant<CredentialRecipe>("right") },
    { weight: 2, arbitrary: fc.constant<CredentialRecipe>("none") },
    { weight: 1, arbitrary: fc.constantFrom<CredentialRecipe>("wrong-env-key", "wrong-deploy-token", "wrong-bearer", "malformed") },
    { weight: 3, arbitrary: fc.constantFrom<CredentialRecipe>("admin", "runner", "env", "deploy-token") },
  );
  return fc.record({
    method: fc.constantFrom(...route.methods),
    credential,
    params: fc.record(params),
    query: partOf(route.querystring, options, [fc.constantFrom(...ODD_QUERIES).map((text) => ({ kind: "raw" as const, text }))]),
    body: partOf(route.body, options, [rawBody, jsonBody]),
    link: fc.option(fc.nat(), { freq: 2 }),
    contentType: fc.oneof({ weight: 12, arbitrary: fc.constant("application/json") }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
  });
}

/** encodeURIComponent that also sends an unpaired surrogate (as its WTF-8 bytes) instead of throwing. */
export function encodeLoose(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return [...text]
      .map((ch) => {
        const code = ch.charCodeAt(0);
        if (ch.length === 1 && code >= 0xd800 && code <= 0xdfff) return `%${(0xe0 | (code >> 12)).toString(16)}%${(0x80 | ((code >> 6) & 0x3f)).toString(16)}%${(0x80 | (code & 0x3f)).toString(16)}`.toUpperCase();
        return encodeURIComponent(ch);
      })
      .join("");
  }
}

function queryString(value: unknown): string {
  if (!value || typeof value !== "object") return value === undefined ? "" : `?${encodeLoose(String(value))}`;
  const pairs: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) pairs.push(`${encodeLoose(k)}=${encodeLoose(typeof one === "object" && one !== null ? JSON.stringify(one) : String(one))}`);
  }
  return pairs.length ? `?${pairs.join("&")}` : "";
}

function credentialHeader(recipe: CredentialRecipe, route: FuzzRoute, stack: FuzzStack): string | undefined {
  const c = stack.credentials;
  switch (recipe) {
    case "right":
      return route.auth === "none" ? undefined : `Bearer ${route.auth === "env" ? c.env : c[route.auth]}`;
    case "none":
      return undefined;
    case "wrong-env-key":
      return "Bearer sk_production_notARealKey000000000000000000";
    case "wrong-deploy-token":
      return "Bearer dt_notARealDeployToken0000000000000000000";
    case "wrong-bearer":
      return `Bearer ${c.admin}x`;
    case "malformed":
      return "Basic YWRtaW46YWRtaW4=";
    default:
      return `Bearer ${c[recipe]}`;
  }
}

function isRight(recipe: CredentialRecipe, route: FuzzRoute): boolean {
  if (route.auth === "none") return true;
  return recipe === "right" || recipe === route.auth;
}

/** The request a recipe describes. */
/** The recipe with one harvested tuple's values in the params and top-level body fields of the same names. */
function linked(recipe: RequestRecipe, stack: FuzzStack): RequestRecipe {
  if (recipe.link === null || stack.tuples.length === 0) return recipe;
  const tuple = stack.tuples[recipe.link % stack.tuples.length];
  const params = Object.fromEntries(Object.entries(recipe.params).map(([k, p]) => [k, k in tuple && !("odd" in p) ? { value: tuple[k] } : p]));
  const b = recipe.body;
  const body =
    (b.kind === "valid" || b.kind === "mutated") && b.value && typeof b.value === "object" && !Array.isArray(b.value)
      ? { ...b, value: { ...(b.value as object), ...Object.fromEntries(Object.entries(tuple).filter(([k]) => k in (b.value as object))) } }
      : b;
  return { ...recipe, params, body };
}

export function materialize(original: RequestRecipe, route: FuzzRoute, stack: FuzzStack): FuzzRequest {
  const recipe = linked(original, stack);
  let path = route.url;
  for (const name of route.paramNames) {
    const p = recipe.params[name];
    path = path.replace(`:${name}`, "odd" in p ? p.odd : encodeLoose(p.value));
  }
  const q = recipe.query;
  const query = q.kind === "none" ? "" : q.kind === "raw" ? q.text : q.kind === "mutated" ? queryString(applyMutation(q.value, q.mutation)) : queryString(q.value);
  const b = recipe.body;
  const payload =
    b.kind === "none" ? undefined : b.kind === "raw" ? b.text : b.kind === "mutated" ? serializeBody(applyMutation(b.value, b.mutation)) : serializeBody(b.value);
  const headers: Record<string, string> = {};
  const auth = credentialHeader(recipe.credential, route, stack);
  if (auth) headers.authorization = auth;
  if (payload !== undefined && recipe.contentType) headers["content-type"] = recipe.contentType;
  // The field check holds only when everything fastify validates before the body is valid.
  const paramValues = Object.entries(recipe.params).map(([k, p]) => [k, "odd" in p ? null : p.value]);
  const paramsValid = paramValues.every(([, v]) => v !== null) && (!route.params || route.params.safeParse(Object.fromEntries(paramValues)).success);
  const queryValid = !route.querystring || (q.kind === "valid" && route.querystring.safeParse(q.value).success) || (q.kind === "none" && route.querystring.safeParse({}).success);
  const wrongBodyField =
    b.kind === "mutated" && isRight(recipe.credential, route) && recipe.contentType === "application/json" && paramsValid && queryValid && route.body?.safeParse(b.value).success && findUnstorableInput(b.value) === null
      ? fieldOf(b.mutation.kind === "extra-field" ? [...b.mutation.path, b.mutation.key] : b.mutation.path)
      : undefined;
  return { method: recipe.method, url: path + query, headers, payload, wrongBodyField, bodyBytes: payload === undefined ? 0 : Buffer.byteLength(payload) };
}

/** A request short enough to print: long strings cut. */
export function describeRequest(request: FuzzRequest): string {
  const cut = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
  const headers = { ...request.headers, ...(request.headers.authorization ? { authorization: cut(request.headers.authorization, 24) } : {}) };
  return `${request.method} ${cut(request.url, 200)}\n    headers: ${JSON.stringify(headers)}\n    body (${request.bodyBytes} bytes): ${request.payload === undefined ? "(none)" : cut(JSON.stringify(request.payload).slice(1, -1))}`;
}
