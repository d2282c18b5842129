import { useEffect, useState } from "preact/hooks";
import { api } from "../api.ts";
import { ErrorMessage } from "../components/status.tsx";
import { statusesIn, Swatch, TaskChart, TaskChartTable, type TaskRunBucket } from "../components/task-chart.tsx";
import { duration } from "../format.ts";

export interface TaskOverview {
  id: string;
  filePath: string;
  exportName: string;
  retry: { maxAttempts: number; factor: number; minTimeoutInMs: number; maxTimeoutInMs: number; randomize: boolean };
  machine: { preset: string; cpu: number; memory: number };
  queue: { name: string; concurrencyLimit: number | null };
  maxDurationS: number | null;
  trigger: string | null;
  totals: Record<string, number>;
  p50Ms: number | null;
  p95Ms: number | null;
  buckets: TaskRunBucket[];
}

interface TasksView { version: string | null; from: string; to: string; bucketSeconds: number; tasks: TaskOverview[] }

const WINDOWS = [
  [1, "hour"],
  [6, "6 hours"],
  [24, "24 hours"],
  [168, "7 days"],
  [720, "30 days"],
] as const;

function retryText(r: TaskOverview["retry"]): string {
  if (r.maxAttempts === 1) return "no retries (1 attempt)";
  return `up to ${r.maxAttempts} attempts, backoff ${duration(r.minTimeoutInMs)} → ${duration(r.maxTimeoutInMs)} ×${r.factor}${r.randomize ? ", randomized" : ""}`;
}

function TaskCard(props: { task: TaskOverview; bucketSeconds: number; windowLabel: string }) {
  const t = props.task;
  const total = Object.values(t.totals).reduce((a, c) => a + c, 0);
  const statuses = statusesIn(t.totals);
  const summary = `${t.id}: ${total} run${total === 1 ? "" : "s"} in the last ${props.windowLabel}${statuses.map((s) => `, ${t.totals[s]} ${s}`).join("")}; p50 ${duration(t.p50Ms)}, p95 ${duration(t.p95Ms)}.`;
  const titleId = `task-${t.id}`;
  return (
    <article class="task" data-task={t.id} aria-labelledby={titleId}>
      <h2 id={titleId}>
        <span class="mono">{t.id}</span> <span class="muted small mono">{t.filePath} · {t.exportName}</span>
      </h2>
      <dl class="settings">
        <div><dt>Retry</dt><dd data-testid="retry">{retryText(t.retry)}</dd></div>
        <div><dt>Machine</dt><dd data-testid="machine">{t.machine.preset} ({t.machine.cpu} vCPU, {t.machine.memory} MB)</dd></div>
        <div><dt>Queue</dt><dd data-testid="queue"><span class="mono">{t.queue.name}</span>, {t.queue.concurrencyLimit === null ? "no concurrency limit" : `at most ${t.queue.concurrencyLimit} at once`}</dd></div>
        <div><dt>Max duration</dt><dd>{t.maxDurationS === null ? "none" : duration(t.maxDurationS * 1000)}</dd></div>
        {t.trigger && <div><dt>Starts on</dt><dd>{t.trigger}</dd></div>}
      </dl>
      {total === 0 ? (
        <p class="muted">
          <strong data-testid="total">0</strong> runs in the last {props.windowLabel}. <a href={`/?task=${encodeURIComponent(t.id)}`}>Older runs of {t.id}</a>
        </p>
      ) : (
        <>
          <div class="chart-row">
            <TaskChart taskId={t.id} buckets={t.buckets} bucketSeconds={props.bucketSeconds} summary={summary} />
            <div>
              <p class="totals-head"><strong data-testid="total">{total}</strong> run{total === 1 ? "" : "s"} in the last {props.windowLabel}</p>
              <ul class="legend" aria-label={`${t.id} runs by status`}>
                {statuses.map((s) => (
                  <li data-status-total={s}><Swatch status={s} /> {s} <strong data-count>{t.totals[s]}</strong></li>
                ))}
              </ul>
              <p>p50 <strong data-testid="p50">{duration(t.p50Ms)}</strong> · p95 <strong data-testid="p95">{duration(t.p95Ms)}</strong></p>
              <p><a href={`/?task=${encodeURIComponent(t.id)}`}>Runs of {t.id}</a></p>
            </div>
          </div>
          <details>
            <summary>The chart as a table</summary>
            <TaskChartTable buckets={t.buckets} />
          </details>
        </>
      )}
    </article>
  );
}

/** Each task of the promoted version: its settings from the version's manifest, and a chart of its recent runs. */
export function TasksPage(props: { environment: string }) {
  const [hours, setHours] = useState<number>(24);
  const [view, setView] = useState<TasksView | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setError(null);
    api<TasksView>("GET", `/api/v1/tasks?hours=${hours}`).then(setView, setError);
  }, [hours]);
  const windowLabel = WINDOWS.find(([h]) => h === hours)?.[1] ?? `${hours} hours`;
  return (
    <section aria-labelledby="tasks-title">
      <h1 id="tasks-title">Tasks of {props.environment}</h1>
      <div class="inline">
        <p>
          Promoted version: <strong class="mono" data-testid="tasks-version">{view ? (view.version ?? "none") : "…"}</strong>
        </p>
        <label>
          Runs of the last{" "}
          <select value={String(hours)} onChange={(e) => setHours(Number((e.target as HTMLSelectElement).value))} data-testid="window">
            {WINDOWS.map(([h, text]) => <option value={String(h)}>{text}</option>)}
          </select>
        </label>
      </div>
      <ErrorMessage error={error} />
      {view && view.tasks.length === 0 && <p class="muted">No promoted version with tasks in this environment yet: deploy first.</p>}
      {view?.tasks.map((t) => <TaskCard key={`${hours}:${t.id}`} task={t} bucketSeconds={view.bucketSeconds} windowLabel={windowLabel} />)}
    </section>
  );
}
