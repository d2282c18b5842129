import type { Knex } from "knex";
import { BuildManifest, type TaskManifestEntry, type TaskOverview, type TaskRunBucket, type TasksView } from "../../schemas/index.ts";
import { taskRunStats, type TaskRunStatsRow } from "../sql/task-run-stats.ts";

/** Every chart has this many bars, whatever the window. */
export const TASK_CHART_BUCKETS = 24;

function triggerOf(task: TaskManifestEntry): string | null {
  if (task.schedule) return `schedule ${task.schedule.cron} (${task.schedule.timezone})`;
  if (task.webhook) return `webhook ${task.webhook.source} (${task.webhook.provider})`;
  return null;
}

/** Buckets in time order, each with its start; empty buckets included so the chart's axis is even. */
function bucketsOf(rows: TaskRunStatsRow[], from: Date, bucketSeconds: number): TaskRunBucket[] {
  const buckets: TaskRunBucket[] = Array.from({ length: TASK_CHART_BUCKETS }, (_, i) => ({
    start: new Date(from.getTime() + i * bucketSeconds * 1000).toISOString(),
    counts: {},
    p50Ms: null,
    p95Ms: null,
  }));
  for (const row of rows) {
    if (row.bucket === null) continue;
    const bucket = buckets[row.bucket];
    if (row.status === null) Object.assign(bucket, { p50Ms: row.p50, p95Ms: row.p95 });
    else bucket.counts[row.status] = row.count;
  }
  return buckets;
}

/**
 * The Tasks page: each task of the environment's promoted version with its settings (from that
 * version's manifest) and its runs of the last `hours`, in 24 buckets. The window ends at the next
 * bucket boundary, so a reload within a bucket shows the same bars.
 */
export async function taskOverview(db: Knex, input: { environmentId: string; hours: number; now?: Date }): Promise<TasksView> {
  const promoted = await db("environments as e")
    .join("deployments as d", "d.id", "e.promoted_deployment_id")
    .where("e.id", input.environmentId)
    .first("d.version", "d.manifest");
  const bucketSeconds = (input.hours * 3600) / TASK_CHART_BUCKETS;
  const now = (input.now ?? new Date()).getTime();
  const to = new Date(Math.ceil(now / (bucketSeconds * 1000)) * bucketSeconds * 1000);
  const from = new Date(to.getTime() - input.hours * 3_600_000);
  const parsed = promoted?.manifest ? BuildManifest.safeParse(promoted.manifest) : null;
  const tasks = parsed?.success ? parsed.data.tasks : [];
  const rows = await taskRunStats(db, { environmentId: input.environmentId, tasks: tasks.map((t) => t.id), from, bucketSeconds, buckets: TASK_CHART_BUCKETS });
  const byTask = new Map<string, TaskRunStatsRow[]>();
  for (const row of rows) byTask.set(row.task_id, [...(byTask.get(row.task_id) ?? []), row]);
  return {
    version: promoted?.version ?? null,
    from: from.toISOString(),
    to: to.toISOString(),
    bucketSeconds,
    tasks: tasks.map((task): TaskOverview => {
      const own = byTask.get(task.id) ?? [];
      const window = own.filter((r) => r.bucket === null);
      const all = window.find((r) => r.status === null);
      return {
        id: task.id,
        filePath: task.filePath,
        exportName: task.exportName,
        retry: task.retry,
        machine: task.machine,
        queue: { name: task.queue.name, concurrencyLimit: task.queue.concurrencyLimit ?? null },
        maxDurationS: task.maxDuration ?? null,
        trigger: triggerOf(task),
        totals: Object.fromEntries(window.filter((r) => r.status !== null).map((r) => [r.status, r.count])),
        p50Ms: all?.p50 ?? null,
        p95Ms: all?.p95 ?? null,
        buckets: bucketsOf(own, from, bucketSeconds),
      };
    }),
  };
}
