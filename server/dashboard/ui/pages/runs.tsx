import { useEffect, useRef, useState } from "preact/hooks";
import { api, streamRuns } from "../api.ts";
import { ErrorMessage, Status } from "../components/status.tsx";
import { duration, FINAL, when } from "../format.ts";
import { navigate } from "../router.ts";

export interface RunView {
  id: string;
  taskId: string;
  status: string;
  environment: string;
  version: string | null;
  payload: unknown;
  output: unknown;
  error: { name?: string; message: string; stack?: string } | null;
  attempts: number;
  tags: string[];
  parentRunId: string | null;
  replayOf: string | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  durationMs: number | null;
  /** Only in the admin's list across every environment. */
  project?: string;
}

const STATUSES = ["PENDING_VERSION", "DELAYED", "QUEUED", "EXECUTING", "WAITING", "SUSPENDED", "RETRYING", "COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "EXPIRED"];
const FILTERS = ["task", "status", "tag", "version", "from", "to"] as const;
const PAGE = 25;

/** datetime-local values have no zone: read them as local time, send ISO. */
const toIso = (local: string) => (local ? new Date(local).toISOString() : "");

/**
 * The run list of the environment acted in, or — for the admin's "All environments" — of every
 * environment (`all`: opening a run switches the picker to that run's environment first).
 */
export function Runs(props: { all?: { open(environment: string, runId: string): void } } = {}) {
  const all = props.all;
  const listUrl = all ? "/api/v1/admin/runs" : "/api/v1/runs";
  const initial = new URLSearchParams(location.search);
  const [filters, setFilters] = useState<Record<string, string>>(Object.fromEntries(FILTERS.map((f) => [f, initial.get(f) ?? ""])));
  const [runs, setRuns] = useState<RunView[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(false);
  const loaded = useRef(PAGE);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [bulk, setBulk] = useState<{ what: "cancel" | "replay"; asking: boolean; result?: string } | null>(null);

  const query = (extra: Record<string, string>) => {
    const q = new URLSearchParams();
    for (const f of FILTERS) if (filters[f]) q.set(f, f === "from" || f === "to" ? toIso(filters[f]) : filters[f]);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    if (all) q.delete("version");
    return q;
  };
  // Reads overlap (a live event, a filter change): only the latest one started may show its answer.
  const generation = useRef(0);
  const load = async () => {
    const mine = ++generation.current;
    try {
      const page = await api<{ data: RunView[]; nextCursor: string | null }>("GET", `${listUrl}?${query({ limit: String(Math.min(200, loaded.current)) })}`);
      if (mine !== generation.current) return;
      setRuns(page.data);
      setNext(page.nextCursor);
      setError(null);
    } catch (e) {
      setError(e);
    }
  };
  const more = async () => {
    if (!next) return;
    const mine = generation.current;
    const page = await api<{ data: RunView[]; nextCursor: string | null }>("GET", `${listUrl}?${query({ limit: String(PAGE), cursor: next })}`);
    if (mine !== generation.current) return;
    loaded.current += page.data.length;
    setRuns((r) => [...r, ...page.data]);
    setNext(page.nextCursor);
  };

  useEffect(() => {
    loaded.current = PAGE;
    void load();
    const url = new URLSearchParams();
    for (const f of FILTERS) if (filters[f]) url.set(f, filters[f]);
    history.replaceState(null, "", `/${url.size ? `?${url}` : ""}`);
  }, [JSON.stringify(filters)]);

  // Live: every change of this environment's runs (every environment's, for the admin's list of all) re-reads what is shown (at most every 250 ms).
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const stop = streamRuns(() => {
      setLive(true);
      if (!timer) timer = setTimeout(() => ((timer = null), void load()), 250);
    }, undefined, all !== undefined);
    return () => {
      stop();
      if (timer) clearTimeout(timer);
    };
  }, [JSON.stringify(filters)]);

  // One request for the whole selection; the server answers with every run's outcome.
  const runBulk = async (what: "cancel" | "replay") => {
    const ids = [...selected];
    try {
      const r = await api<{ done: number; results: Array<{ id: string; ok: boolean; error?: { message: string } }> }>("POST", `/api/v1/runs/bulk/${what}`, { ids });
      const failed = r.results.filter((x) => !x.ok).map((x) => `${x.id}: ${x.error?.message ?? "failed"}`);
      setSelected(new Set());
      setBulk({ what, asking: false, result: `${what === "cancel" ? "Canceled" : "Replayed"} ${r.done} of ${ids.length} run(s).${failed.length ? ` Not done: ${failed.join("; ")}` : ""}` });
    } catch (e) {
      setBulk({ what, asking: false, result: `Nothing was ${what === "cancel" ? "canceled" : "replayed"}: ${(e as Error).message}` });
    }
    void load();
  };
  const toggle = (id: string) => setSelected((s) => {
    const next = new Set(s);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    return next;
  });
  const cancelable = [...selected].filter((id) => !FINAL.has(runs.find((r) => r.id === id)?.status ?? "COMPLETED")).length;

  const set = (name: string) => (e: Event) => setFilters((f) => ({ ...f, [name]: (e.target as HTMLInputElement).value }));
  // What is typed in a text filter and not applied yet (it applies on change: Tab, Enter, leaving the
  // box). Kept in state, or a live update's re-render puts the applied value back into the box and
  // wipes what the user was typing.
  const [typed, setTyped] = useState<Record<string, string>>({});
  useEffect(() => setTyped({}), [JSON.stringify(filters)]);
  const text = (name: string) => ({
    value: typed[name] ?? filters[name],
    onInput: (e: Event) => setTyped((t) => ({ ...t, [name]: (e.target as HTMLInputElement).value })),
    onChange: set(name),
  });
  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs <span class="live" aria-live="polite">{live ? "● live" : ""}</span></h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label>Task <input {...text("task")} placeholder="any" /></label>
        <label>
          Status
          <select value={filters.status} onChange={set("status")}>
            <option value="">any</option>
            {STATUSES.map((s) => <option value={s}>{s}</option>)}
          </select>
        </label>
        <label>Tag <input {...text("tag")} placeholder="any" /></label>
        {!all && <label>Version <input {...text("version")} placeholder="any" pattern="\d{8}\.\d+" /></label>}
        <label>From <input type="datetime-local" value={filters.from} onChange={set("from")} /></label>
        <label>To <input type="datetime-local" value={filters.to} onChange={set("to")} /></label>
        <button type="button" onClick={() => setFilters(Object.fromEntries(FILTERS.map((f) => [f, ""])))}>Clear</button>
      </form>
      <ErrorMessage error={error} />
      {!all && <div class="actions" role="group" aria-label="Selected runs">
        <span>{selected.size} selected</span>
        {bulk?.asking ? (
          <span role="group" aria-label="Confirm">
            {bulk.what === "cancel" ? `Cancel ${selected.size} run(s)?` : `Replay ${selected.size} run(s) on their versions?`}{" "}
            <button type="button" autoFocus onClick={() => runBulk(bulk.what)}>Yes, {bulk.what} them</button> <button type="button" onClick={() => setBulk(null)}>No</button>
          </span>
        ) : (
          <>
            <button type="button" disabled={cancelable === 0} onClick={() => setBulk({ what: "cancel", asking: true })}>Cancel selected</button>
            <button type="button" disabled={selected.size === 0} onClick={() => setBulk({ what: "replay", asking: true })}>Replay selected</button>
          </>
        )}
        {bulk?.result && <span role="status" data-testid="bulk-result">{bulk.result}</span>}
      </div>}
      <table class="runs">
        <thead>
          <tr>
            <th scope="col">
              <input type="checkbox" aria-label="Select every run shown" checked={runs.length > 0 && runs.every((r) => selected.has(r.id))} onChange={(e) => setSelected((e.target as HTMLInputElement).checked ? new Set(runs.map((r) => r.id)) : new Set())} />
            </th>
            <th scope="col">Run</th>{all && <th scope="col">Environment</th>}<th scope="col">Task</th><th scope="col">Status</th><th scope="col">Version</th><th scope="col">Tags</th><th scope="col">Created</th><th scope="col">Duration</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id} data-run={run.id} onClick={(e) => !["A", "INPUT"].includes((e.target as HTMLElement).tagName) && (all ? all.open(`${run.project}/${run.environment}`, run.id) : navigate(`/runs/${run.id}`))}>
              <td><input type="checkbox" aria-label={`Select ${run.id}`} checked={selected.has(run.id)} onChange={() => toggle(run.id)} /></td>
              <td><a href={`/runs/${run.id}`} class="mono" onClick={all ? (e) => { e.preventDefault(); e.stopPropagation(); all.open(`${run.project}/${run.environment}`, run.id); } : undefined}>{run.id}</a></td>
              {all && <td data-testid="run-environment">{run.project}/{run.environment}</td>}
              <td>{run.taskId}</td>
              <td><Status status={run.status} /></td>
              <td class="mono">{run.version ?? "—"}</td>
              <td>{run.tags.join(", ")}</td>
              <td>{when(run.createdAt)}</td>
              <td>{duration(run.durationMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {runs.length === 0 && !error && <p class="muted">No runs match. Trigger one from the <a href="/test">Test</a> page.</p>}
      {next && <button type="button" onClick={more}>Load older runs</button>}
    </section>
  );
}
