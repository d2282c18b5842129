// The long HTTP API fuzz run: `npx tsx bench/fuzz/run.ts --runs N --seed S [--route TEXT] [--json]`.
// Starts its own embedded PostgreSQL, migrates a database, and drives the fuzzer of test/fuzz against
// the real server; prints per-route request counts, the status histogram, 5xx, rows changed by
// refused requests and the server's heap and RSS (after a forced GC) before and after.
import { mkdtemp, rm, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { connectDatabase, migrate, startEmbeddedPostgres } from "../../server/index.ts";
import { fuzzApi } from "../../test/fuzz/fuzz-api.ts";
import { startFuzzStack } from "../../test/fuzz/fuzz-stack.ts";
import { memoryAfterGc } from "../../test/fuzz/gc.ts";
import { fuzzRawHttp } from "../../test/fuzz/raw-http.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "1000" },
    seed: { type: "string" },
    route: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const runsPerRoute = Number(values.runs);
const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000;
const progress = (line: string) => process.stderr.write(`${line}\n`);

const dataRoot = await mkdtemp(path.join(tmpdir(), "stasis-fuzz-pg-"));
await chmod(dataRoot, 0o755);
const pg = await startEmbeddedPostgres({ dataDir: path.join(dataRoot, "data"), unsafeFast: true });
const admin = connectDatabase(pg.url, { poolMax: 1 });
await admin.raw(`CREATE DATABASE stasis_fuzz`);
await admin.destroy();
const url = new URL(pg.url);
url.pathname = "/stasis_fuzz";
const db = connectDatabase(url.toString());
let exitCode = 0;
try {
  await migrate(db);
  const stack = await startFuzzStack(db);
  try {
    progress(`fuzz: seed ${seed}, ${runsPerRoute} requests per route`);
    await fuzzApi(stack, { seed: seed + 1, runsPerRoute: 3, routeFilter: values.route });
    const before = memoryAfterGc();
    const report = await fuzzApi(stack, { seed, runsPerRoute, routeFilter: values.route, log: progress });
    const raw = await fuzzRawHttp(stack);
    const after = memoryAfterGc();
    const result = {
      seed,
      runsPerRoute,
      requests: report.requests,
      routes: report.routes,
      durationMs: report.durationMs,
      bodyMiBSent: Math.round(report.bodyBytesSent / 1048576),
      statusHistogram: report.statusHistogram,
      serverErrors: report.serverErrors,
      refusedRequestsThatChangedRows: report.refusedRequestsThatChangedRows,
      errorBodiesNotInApiShape: report.errorBodiesNotInApiShape,
      validationErrorsNotNamingTheField: report.validationErrorsNotNamingTheField,
      memory: { before, after },
      perRoute: report.perRoute,
      raw: raw.map((r) => ({ name: r.name, statuses: r.statuses, codes: r.codes, problems: r.problems })),
      violations: report.violations,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      console.log(`seed ${seed}: ${report.requests} requests on ${report.routes} routes in ${(report.durationMs / 1000).toFixed(0)} s (${result.bodyMiBSent} MiB of bodies)`);
      for (const r of report.perRoute) console.log(`  ${String(r.requests).padStart(6)}  ${r.route.padEnd(64)} ${JSON.stringify(r.statuses)}`);
      console.log(`statuses: ${JSON.stringify(report.statusHistogram)}`);
      console.log(`5xx: ${report.serverErrors}; refused requests that changed rows: ${report.refusedRequestsThatChangedRows}; 4xx not in ApiErrorBody: ${report.errorBodiesNotInApiShape}; validation errors not naming the field: ${report.validationErrorsNotNamingTheField}`);
      console.log(`raw socket cases: ${raw.length}, with problems: ${raw.filter((r) => r.problems.length).length}`);
      console.log(`heap after GC: ${before.heapUsedMiB} → ${after.heapUsedMiB} MiB; rss: ${before.rssMiB} → ${after.rssMiB} MiB`);
    }
    if (report.violations.length || raw.some((r) => r.problems.length)) exitCode = 1;
  } finally {
    await stack.close();
  }
} finally {
  await db.destroy();
  await pg.stop();
  await rm(dataRoot, { recursive: true, force: true });
}
process.exit(exitCode);
