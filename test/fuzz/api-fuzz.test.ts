// The HTTP API fuzzer, short and seeded: FUZZ_SEED reproduces a run, FUZZ_RUNS sets requests per
// route, FUZZ_ROUTE narrows it to routes whose "METHODS url" contains it. A failure prints the seed,
// the route and the request. The long run is bench/fuzz/run.ts.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { fuzzApi, type FuzzViolation } from "./fuzz-api.ts";
import { startFuzzStack, type FuzzStack } from "./fuzz-stack.ts";
import { memoryAfterGc } from "./gc.ts";
import { fuzzRawHttp } from "./raw-http.ts";

// A fixed default keeps `npm test` repeatable; FUZZ_SEED=$RANDOM explores.
const seed = Number(process.env.FUZZ_SEED ?? 20261130);
const runs = Number(process.env.FUZZ_RUNS ?? 30);
/** Heap growth (after a forced GC) that still counts as "back to the baseline". */
const HEAP_SLACK_MIB = 24;
let database: TestDatabase;
let stack: FuzzStack;

beforeAll(async () => {
  database = await createTestDatabase();
  stack = await startFuzzStack(database.db);
});

afterAll(async () => {
  await stack?.close();
  await database?.drop();
});

const describeViolation = (v: FuzzViolation) => `${v.route} (FUZZ_SEED=${v.seed} FUZZ_ROUTE='${v.route}' FUZZ_RUNS=${v.run + 1}): ${v.problems.join("; ")}\n    ${v.request}\n    → ${v.status} ${v.response}`;

it(`every route answers generated and mutated requests without a 5xx, in the error shape, changing no row when refused, and the heap returns to its baseline (FUZZ_SEED=${seed})`, async () => {
  // Violations as they happen; the per-route lines only in the long run.
  const log = (line: string) => line.startsWith("VIOLATION") && console.log(line);
  console.log(`fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);
  // A short warm-up first, so the baseline already holds what a first request of each route caches.
  const warmup = await fuzzApi(stack, { seed: seed + 1, runsPerRoute: 3, routeFilter: process.env.FUZZ_ROUTE });
  const before = memoryAfterGc();
  const report = await fuzzApi(stack, { seed, runsPerRoute: runs, routeFilter: process.env.FUZZ_ROUTE, log });
  const after = memoryAfterGc();
  console.log(
    `fuzz: ${report.requests} requests on ${report.routes} routes in ${report.durationMs} ms (${Math.round(report.bodyBytesSent / 1048576)} MiB of bodies); ` +
      `statuses ${JSON.stringify(report.statusHistogram)}; 5xx ${report.serverErrors}; refused requests that changed rows ${report.refusedRequestsThatChangedRows}; ` +
      `heap after GC ${before.heapUsedMiB} → ${after.heapUsedMiB} MiB, rss ${before.rssMiB} → ${after.rssMiB} MiB`,
  );
  expect([...warmup.violations, ...report.violations].map(describeViolation)).toEqual([]);
  expect(report.requests).toBe(report.routes * runs);
  expect(after.heapUsedMiB).toBeLessThan(before.heapUsedMiB + HEAP_SLACK_MIB);
  // ~1 minute at the default on a loaded 2-core machine (the suite runs 30 a route; bench/fuzz runs thousands); room for larger FUZZ_RUNS and heavier load.
}, Math.max(300_000, runs * 4_000));

it("raw bytes on a real socket (bad UTF-8, lying Content-Length, chunked past the limit, broken HTTP) get a 4xx in the error shape or a closed socket, never a 5xx", async () => {
  const results = await fuzzRawHttp(stack);
  for (const r of results) console.log(`raw: ${r.name}: ${r.statuses.map((st, i) => `${st} ${r.codes[i]}`).join(", ") || "(closed, no response)"}`);
  expect(results.filter((r) => r.problems.length).map((r) => `${r.name}: ${r.problems.join("; ")}`)).toEqual([]);
});
