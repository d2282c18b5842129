// Drives every discovered route with fast-check recipes through app.inject and checks each answer:
// no 5xx, 4xx bodies in the API's error shape naming the wrong field, and no row changed by a 4xx.
import fc from "fast-check";
import { ApiErrorBody } from "../../schemas/index.ts";
import { changedTables, createSnapshotter, type Snapshot } from "./db-snapshot.ts";
import type { FuzzStack } from "./fuzz-stack.ts";
import { describeRequest, materialize, requestRecipe, type FuzzRequest } from "./requests.ts";
import { discoverRoutes, routeName, type FuzzRoute } from "./routes.ts";

export interface FuzzOptions {
  seed: number;
  runsPerRoute: number;
  /** Only routes whose "METHODS url" contains this. */
  routeFilter?: string;
  log?: (line: string) => void;
}

export interface FuzzViolation {
  route: string;
  /** Reproduce with FUZZ_SEED=<seed> FUZZ_ROUTE=<route> FUZZ_RUNS=<run + 1>. */
  seed: number;
  run: number;
  request: string;
  status: number;
  response: string;
  problems: string[];
}

export interface RouteStats {
  route: string;
  auth: string;
  requests: number;
  statuses: Record<string, number>;
}

export interface FuzzReport {
  seed: number;
  runsPerRoute: number;
  routes: number;
  requests: number;
  durationMs: number;
  statusHistogram: Record<string, number>;
  serverErrors: number;
  refusedRequestsThatChangedRows: number;
  errorBodiesNotInApiShape: number;
  validationErrorsNotNamingTheField: number;
  bodyBytesSent: number;
  perRoute: RouteStats[];
  violations: FuzzViolation[];
}

/** A per-route seed that does not shift when routes are added or reordered. */
export function routeSeed(seed: number, route: string): number {
  let h = seed >>> 0;
  for (const ch of route) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** The error names the mutated field, a field inside it, or one around it (a union, the object with an extra key). */
function onSameBranch(field: string, path: string): boolean {
  if (["body", ""].includes(field) || path === "") return true;
  const a = field.split(".");
  const b = path.split(".");
  const n = Math.min(a.length, b.length);
  return a.slice(0, n).every((seg, i) => seg === b[i]);
}

/** What is wrong with one answer (empty when nothing is). */
export function checkAnswer(request: FuzzRequest, status: number, text: string, changed: string[]): { problems: string[]; kinds: string[] } {
  const problems: string[] = [];
  const kinds: string[] = [];
  if (status >= 500) (problems.push(`status ${status}: a server error`), kinds.push("5xx"));
  else if (status < 200 || (status >= 300 && status < 400)) problems.push(`unexpected status ${status}`);
  if (status >= 400 && status < 500) {
    if (changed.length) (problems.push(`a refused request changed rows in: ${changed.join(", ")}`), kinds.push("rows"));
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const parsed = ApiErrorBody.safeParse(body);
    if (!parsed.success) (problems.push("the error body is not { error: { code, message, field? } }"), kinds.push("shape"));
    else if (parsed.data.error.code === "VALIDATION_FAILED") {
      const { field, message } = parsed.data.error;
      if (!field || !message.includes(field)) (problems.push(`a validation error that does not name its field (field ${JSON.stringify(field)})`), kinds.push("field"));
      else if (request.wrongBodyField !== undefined && !onSameBranch(field, request.wrongBodyField)) {
        problems.push(`body field ${request.wrongBodyField} was made wrong but the error names ${field}`);
        kinds.push("field");
      }
    }
  }
  return { problems, kinds };
}

export async function fuzzApi(stack: FuzzStack, options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => {});
  const started = Date.now();
  const routes = discoverRoutes(stack.server.routes).filter((r) => !options.routeFilter || routeName(r).includes(options.routeFilter));
  const snapshot = await createSnapshotter(stack.db);
  let last: Snapshot = await snapshot();
  const report: FuzzReport = {
    seed: options.seed,
    runsPerRoute: options.runsPerRoute,
    routes: routes.length,
    requests: 0,
    durationMs: 0,
    statusHistogram: {},
    serverErrors: 0,
    refusedRequestsThatChangedRows: 0,
    errorBodiesNotInApiShape: 0,
    validationErrorsNotNamingTheField: 0,
    bodyBytesSent: 0,
    perRoute: [],
    violations: [],
  };

  for (const route of routes) {
    const name = routeName(route);
    const seed = routeSeed(options.seed, name);
    const stats: RouteStats = { route: name, auth: route.auth, requests: 0, statuses: {} };
    report.perRoute.push(stats);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(requestRecipe(route, stack), async (recipe) => {
        const index = run++;
        let request: FuzzRequest;
        try {
          request = materialize(recipe, route, stack);
        } catch (error) {
          // A bug of the fuzzer, not of the server: reported, and the run goes on.
          report.violations.push({ route: name, seed: options.seed, run: index, request: JSON.stringify(recipe).slice(0, 500), status: 0, response: "", problems: [`the fuzzer could not build the request: ${(error as Error).message}`] });
          return;
        }
        const { status, text } = await send(stack, request);
        if (status >= 200 && status < 300) await stack.repair();
        const now = await snapshot();
        const changed = status >= 400 && status < 500 ? changedTables(last, now) : [];
        last = now;
        stats.requests++;
        report.requests++;
        report.bodyBytesSent += request.bodyBytes;
        stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
        report.statusHistogram[status] = (report.statusHistogram[status] ?? 0) + 1;
        if (status >= 200 && status < 300) stack.harvest(safeJson(text));
        const { problems, kinds } = checkAnswer(request, status, text, changed);
        if (kinds.includes("5xx")) report.serverErrors++;
        if (kinds.includes("rows")) report.refusedRequestsThatChangedRows++;
        if (kinds.includes("shape")) report.errorBodiesNotInApiShape++;
        if (kinds.includes("field")) report.validationErrorsNotNamingTheField++;
        if (problems.length) {
          const violation = { route: name, seed: options.seed, run: index, request: describeRequest(request), status, response: text.slice(0, 500), problems };
          report.violations.push(violation);
          log(`VIOLATION ${name} (FUZZ_SEED=${options.seed} FUZZ_ROUTE='${name}' FUZZ_RUNS=${index + 1}, run ${index}): ${problems.join("; ")}\n    ${violation.request}\n    → ${status} ${violation.response}`);
        }
      }),
      { seed, numRuns: options.runsPerRoute, endOnFailure: true },
    );
    log(`${name}: ${stats.requests} requests, ${JSON.stringify(stats.statuses)}`);
  }
  report.durationMs = Date.now() - started;
  return report;
}

async function send(stack: FuzzStack, request: FuzzRequest): Promise<{ status: number; text: string }> {
  try {
    const response = await stack.server.app.inject({ method: request.method as "GET", url: request.url, headers: request.headers, ...(request.payload !== undefined ? { payload: request.payload } : {}) });
    return { status: response.statusCode, text: response.body };
  } catch (error) {
    // inject itself failing is the server failing.
    return { status: 599, text: `inject threw: ${(error as Error).message}` };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export type { FuzzRoute };
