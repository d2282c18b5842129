// The HTTP API fuzzer, short and seeded (FUZZ_SEED, FUZZ_RUNS per route, FUZZ_ROUTE to narrow it).
// The long run is bench/fuzz/run.ts.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { fuzzApi } from "./fuzz-api.ts";
import { startFuzzStack, type FuzzStack } from "./fuzz-stack.ts";
import { fuzzRawHttp } from "./raw-http.ts";
import { memoryAfterGc } from "./gc.ts";

const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 1_000_000;
const runs = Number(process.env.FUZZ_RUNS ?? 40);
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

it(`every route answers generated and mutated requests without a 5xx, in the error shape, changing no row when refused (FUZZ_SEED=${seed})`, async () => {
  const log = (line: string) => console.log(line);
  console.log(`fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);
  const before = memoryAfterGc();
  const report = await fuzzApi(stack, { seed, runsPerRoute: runs, routeFilter: process.env.FUZZ_ROUTE, log });
  const after = memoryAfterGc();
  console.log(`fuzz: ${report.requests} requests on ${report.routes} routes in ${report.durationMs} ms; statuses ${JSON.stringify(report.statusHistogram)}; heap ${before.heapUsedMiB} → ${after.heapUsedMiB} MiB, rss ${before.rssMiB} → ${after.rssMiB} MiB`);
  expect(report.violations.map((v) => `${v.route} (FUZZ_SEED=${v.seed} FUZZ_RUNS=${v.run + 1}): ${v.problems.join("; ")}\n    ${v.request}\n    → ${v.status} ${v.response}`)).toEqual([]);
});

it("raw bytes on a real socket (bad UTF-8, lying Content-Length, chunked past the limit, broken HTTP) get a 4xx in the error shape or a closed socket, never a 5xx", async () => {
  const results = await fuzzRawHttp(stack);
  for (const r of results) console.log(`raw: ${r.name}: ${r.statuses.map((st, i) => `${st} ${r.codes[i]}`).join(", ") || "(closed, no response)"}`);
  expect(results.filter((r) => r.problems.length).map((r) => `${r.name}: ${r.problems.join("; ")}`)).toEqual([]);
});
