import { duration, when } from "../format.ts";

export interface TaskRunBucket {
  start: string;
  counts: Record<string, number>;
  p50Ms: number | null;
  p95Ms: number | null;
}

/**
 * Statuses in the order bars stack (finished at the bottom), each with a fill that has at least 3:1
 * contrast on white (non-text contrast) and differs in lightness from its neighbours.
 */
export const CHART_STATUSES: ReadonlyArray<readonly [string, string]> = [
  ["COMPLETED", "#2e7d32"],
  ["FAILED", "#c62828"],
  ["TIMED_OUT", "#ad1457"],
  ["EXPIRED", "#6d4c41"],
  ["CANCELED", "#616161"],
  ["SUSPENDED", "#6a1b9a"],
  ["WAITING", "#8e5bd0"],
  ["EXECUTING", "#00796b"],
  ["RETRYING", "#a15c00"],
  ["DELAYED", "#8d6e00"],
  ["QUEUED", "#1565c0"],
  ["PENDING_VERSION", "#4e5d6c"],
];
const FILL = new Map(CHART_STATUSES);
const ORDER = CHART_STATUSES.map(([s]) => s);

export function statusesIn(counts: Record<string, number>): string[] {
  return Object.keys(counts).sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
}

const W = 720;
const LEFT = 44;
const COUNT_TOP = 8;
const COUNT_H = 110;
const DUR_TOP = COUNT_TOP + COUNT_H + 26;
const DUR_H = 56;
const H = DUR_TOP + DUR_H + 22;

function label(bucketSeconds: number, iso: string): string {
  const d = new Date(iso);
  if (bucketSeconds < 3600 * 4) return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

/**
 * Inline SVG, no library: runs created per bucket stacked by status, and below it the p50/p95
 * duration of the bucket's finished runs. Screen readers get one sentence; the numbers themselves
 * are in the table beside it (TaskChartTable).
 */
export function TaskChart(props: { taskId: string; buckets: TaskRunBucket[]; bucketSeconds: number; summary: string }) {
  const n = props.buckets.length;
  const slot = (W - LEFT - 8) / n;
  const barW = Math.max(2, slot - 3);
  const totals = props.buckets.map((b) => Object.values(b.counts).reduce((a, c) => a + c, 0));
  const maxCount = Math.max(1, ...totals);
  const maxMs = Math.max(1, ...props.buckets.map((b) => b.p95Ms ?? b.p50Ms ?? 0));
  const x = (i: number) => LEFT + i * slot;
  const yDur = (ms: number) => DUR_TOP + DUR_H - (ms / maxMs) * DUR_H;
  const line = (pick: (b: TaskRunBucket) => number | null) =>
    props.buckets.map((b, i) => [pick(b), i] as const).filter(([v]) => v !== null).map(([v, i]) => `${(x(i) + barW / 2).toFixed(1)},${yDur(v!).toFixed(1)}`).join(" ");
  const p50 = line((b) => b.p50Ms);
  const p95 = line((b) => b.p95Ms);
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-label={props.summary} data-testid={`chart-${props.taskId}`}>
      <text x={LEFT - 6} y={COUNT_TOP + 10} text-anchor="end" class="axis">{maxCount}</text>
      <text x={LEFT - 6} y={COUNT_TOP + COUNT_H} text-anchor="end" class="axis">0</text>
      <line x1={LEFT} x2={W - 8} y1={COUNT_TOP + COUNT_H + 0.5} y2={COUNT_TOP + COUNT_H + 0.5} stroke="#6b6b6b" />
      {props.buckets.map((b, i) => {
        let y = COUNT_TOP + COUNT_H;
        return (
          <g data-bucket={i}>
            <title>{`${when(b.start)}: ${totals[i]} run${totals[i] === 1 ? "" : "s"}${statusesIn(b.counts).map((s) => `, ${b.counts[s]} ${s}`).join("")}`}</title>
            {statusesIn(b.counts).map((s) => {
              const h = (b.counts[s] / maxCount) * COUNT_H;
              y -= h;
              return <rect x={x(i)} y={y} width={barW} height={h} fill={FILL.get(s) ?? "#4e5d6c"} data-status={s} data-count={b.counts[s]} />;
            })}
          </g>
        );
      })}
      {[0, Math.floor(n / 2), n - 1].map((i) => (
        <text x={x(i)} y={COUNT_TOP + COUNT_H + 16} class="axis">{label(props.bucketSeconds, props.buckets[i].start)}</text>
      ))}
      <text x={LEFT - 6} y={DUR_TOP + 10} text-anchor="end" class="axis">{duration(maxMs === 1 ? null : maxMs)}</text>
      <line x1={LEFT} x2={W - 8} y1={DUR_TOP + DUR_H + 0.5} y2={DUR_TOP + DUR_H + 0.5} stroke="#6b6b6b" />
      {p95 && <polyline points={p95} fill="none" stroke="#b3261e" stroke-width="2" stroke-dasharray="5 3" />}
      {p50 && <polyline points={p50} fill="none" stroke="#14213d" stroke-width="2" />}
      {props.buckets.map((b, i) => b.p95Ms !== null && <circle cx={x(i) + barW / 2} cy={yDur(b.p95Ms)} r="3" fill="#b3261e" />)}
      {props.buckets.map((b, i) => b.p50Ms !== null && <circle cx={x(i) + barW / 2} cy={yDur(b.p50Ms)} r="3" fill="#14213d" />)}
      <line x1={LEFT} x2={LEFT + 22} y1={H - 8} y2={H - 8} stroke="#14213d" stroke-width="2" />
      <text x={LEFT + 28} y={H - 4} class="axis">p50 duration</text>
      <line x1={LEFT + 130} x2={LEFT + 152} y1={H - 8} y2={H - 8} stroke="#b3261e" stroke-width="2" stroke-dasharray="5 3" />
      <text x={LEFT + 158} y={H - 4} class="axis">p95 duration (finished runs)</text>
    </svg>
  );
}

/** The chart's numbers for the keyboard and screen readers (and anyone who wants them exact). */
export function TaskChartTable(props: { buckets: TaskRunBucket[] }) {
  const rows = props.buckets.filter((b) => Object.keys(b.counts).length > 0);
  if (rows.length === 0) return <p class="muted">No runs in this window.</p>;
  return (
    <table class="compact">
      <thead>
        <tr><th scope="col">From</th><th scope="col">Runs by status</th><th scope="col">p50</th><th scope="col">p95</th></tr>
      </thead>
      <tbody>
        {rows.map((b) => (
          <tr>
            <td>{when(b.start)}</td>
            <td>{statusesIn(b.counts).map((s) => `${b.counts[s]} ${s}`).join(", ")}</td>
            <td>{duration(b.p50Ms)}</td>
            <td>{duration(b.p95Ms)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Swatch(props: { status: string }) {
  return (
    <svg width="12" height="12" aria-hidden="true" class="swatch">
      <rect width="12" height="12" rx="2" fill={FILL.get(props.status) ?? "#4e5d6c"} />
    </svg>
  );
}
