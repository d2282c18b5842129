import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, streamRuns } from "../api.ts";
import { CopyButton, ErrorMessage, Status } from "../components/status.tsx";
import { between, bytes, duration, FINAL, json, when } from "../format.ts";
import { navigate } from "../router.ts";
import type { RunView } from "./runs.tsx";

interface Attempt { number: number; status: string; runnerId: string | null; error: { name?: string; message: string; stack?: string } | null; startedAt: string; endedAt: string | null }
interface Wait { id: string; kind: string; key: string | null; status: string; detail: string; createdAt: string; completedAt: string | null; frozen: boolean; checkpointBytes: number | null; suspendedAt: string | null; resumedAt: string | null; resumedRunnerId: string | null }
interface Timeline { attempts: Attempt[]; waits: Wait[]; children: Array<{ id: string; taskId: string; status: string; createdAt: string }> }
interface LogLine { seq: number; ts: string; level: string; message: string; attempt: number; data?: Record<string, unknown> }

type Row = { at: string; node: preact.JSX.Element };

function timelineRows(t: Timeline): Row[] {
  const rows: Row[] = [];
  for (const a of t.attempts) {
    rows.push({
      at: a.startedAt,
      node: (
        <li class="tl-attempt" data-kind="attempt">
          <strong>Attempt {a.number}</strong> <Status status={a.status} /> on runner <span class="mono">{a.runnerId ?? "—"}</span>
          <div class="muted">started {when(a.startedAt)} · ended {when(a.endedAt)} · {between(a.startedAt, a.endedAt)}</div>
          {a.error && <pre class="error-block">{a.error.name ? `${a.error.name}: ` : ""}{a.error.message}{a.error.stack ? `\n${a.error.stack}` : ""}</pre>}
        </li>
      ),
    });
  }
  for (const w of t.waits) {
    rows.push({
      at: w.createdAt,
      node: (
        <li class={`tl-wait ${w.frozen ? "frozen" : "alive"}`} data-kind="wait" data-frozen={String(w.frozen)}>
          <strong>Wait for {w.detail}</strong>{w.key ? <span class="muted"> ({w.key})</span> : null} <Status status={w.status} />{" "}
          {w.frozen ? <span class="badge frozen-badge">frozen · checkpoint {bytes(w.checkpointBytes)}</span> : <span class="badge">process stayed alive</span>}
          <div class="muted">
            began {when(w.createdAt)}
            {w.frozen && <> · suspended {when(w.suspendedAt)}</>}
            {w.completedAt && <> · done {when(w.completedAt)} ({between(w.createdAt, w.completedAt)})</>}
            {w.resumedAt && <> · resumed {when(w.resumedAt)} on runner <span class="mono">{w.resumedRunnerId}</span></>}
          </div>
        </li>
      ),
    });
  }
  for (const c of t.children) {
    rows.push({ at: c.createdAt, node: <li class="tl-child" data-kind="child">↳ child run <a href={`/runs/${c.id}`} class="mono">{c.id}</a> ({c.taskId}) <Status status={c.status} /></li> });
  }
  return rows.sort((a, b) => a.at.localeCompare(b.at));
}

function Logs(props: { lines: LogLine[] }) {
  return (
    <ol class="logs" aria-label="Log lines">
      {props.lines.map((l) => (
        <li class={`log log-${l.level}`} data-seq={l.seq}>
          <span class="mono muted">{new Date(l.ts).toLocaleTimeString(undefined, { hour12: false })}</span> <span class={`level level-${l.level}`}>{l.level.toUpperCase()}</span> <span class="muted">#{l.attempt}</span> {l.message}
          {l.data && Object.keys(l.data).length > 0 && (
            <details>
              <summary>data</summary>
              <pre>{json(l.data)}</pre>
            </details>
          )}
        </li>
      ))}
    </ol>
  );
}

export function RunPage(props: { id: string }) {
  const [run, setRun] = useState<RunView | null>(null);
  const [timeline, setTimeline] = useState<Timeline | null>(null);
  const [lines, setLines] = useState<LogLine[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [replayVersion, setReplayVersion] = useState("");
  const after = useRef(0);
  const reading = useRef(false);

  // Live events can start reads that overlap: only the latest one started may show its answer.
  const generation = useRef(0);
  const load = async () => {
    const mine = ++generation.current;
    try {
      const [r, t] = await Promise.all([api<RunView>("GET", `/api/v1/runs/${encodeURIComponent(props.id)}`), api<Timeline>("GET", `/api/v1/runs/${encodeURIComponent(props.id)}/timeline`)]);
      if (mine !== generation.current) return;
      setRun(r);
      setTimeline(t);
      setError(null);
    } catch (e) {
      setError(e);
    }
  };
  const readLogs = async () => {
    if (reading.current) return;
    reading.current = true;
    try {
      for (;;) {
        const page = await api<{ data: LogLine[]; next: number }>("GET", `/api/v1/runs/${encodeURIComponent(props.id)}/logs?after=${after.current}&limit=1000`);
        if (page.data.length === 0) break;
        after.current = page.next;
        setLines((l) => [...l, ...page.data]);
      }
    } catch {
      // the run's own error shows above
    } finally {
      reading.current = false;
    }
  };
  useEffect(() => {
    void load();
    void readLogs();
    // Live: this run's state changes and log lines arrive as events; each re-reads what changed.
    return streamRuns((change) => {
      if (!change || change.what !== "logs") void load();
      if (!change || change.what === "logs") void readLogs();
    }, props.id);
  }, [props.id]);

  const act = async (what: "cancel" | "replay") => {
    setActionError(null);
    try {
      if (what === "cancel") {
        setRun(await api<RunView>("POST", `/api/v1/runs/${encodeURIComponent(props.id)}/cancel`));
      } else {
        const started = await api<{ id: string }>("POST", `/api/v1/runs/${encodeURIComponent(props.id)}/replay`, replayVersion ? { version: replayVersion } : {});
        navigate(`/runs/${started.id}`);
      }
    } catch (e) {
      setActionError(e);
    }
  };

  if (error instanceof ApiError && error.status === 404) return <section><h1>Run not found</h1><p role="alert">{error.message}</p><a href="/">Back to runs</a></section>;
  if (error instanceof ApiError && error.status === 403) return <section><h1>Not your environment</h1><p role="alert">{error.message}</p></section>;
  if (!run) return <section><ErrorMessage error={error} /><p>Loading…</p></section>;
  const final = FINAL.has(run.status);
  const cli = `stasis runs get ${run.id}`;
  return (
    <section aria-labelledby="run-title">
      <h1 id="run-title">
        <span class="mono">{run.id}</span> <CopyButton text={run.id} label="Copy the run id" />
      </h1>
      <p>
        <span data-testid="run-status"><Status status={run.status} /></span> task <strong>{run.taskId}</strong> · version <span class="mono">{run.version ?? "not locked yet"}</span> · {run.attempts} attempt(s) · ran {duration(run.durationMs)}
        {run.tags.length > 0 && <> · tags {run.tags.join(", ")}</>}
        {run.parentRunId && <> · parent <a href={`/runs/${run.parentRunId}`} class="mono">{run.parentRunId}</a></>}
        {run.replayOf && <> · replay of <a href={`/runs/${run.replayOf}`} class="mono">{run.replayOf}</a></>}
      </p>
      <div class="actions">
        <button type="button" onClick={() => act("cancel")} disabled={final}>Cancel run</button>
        <label>Replay on version <input value={replayVersion} onInput={(e) => setReplayVersion((e.target as HTMLInputElement).value)} placeholder={run.version ?? "same"} size={12} /></label>
        <button type="button" onClick={() => act("replay")}>Replay</button>
        <code class="cli">{cli}</code> <CopyButton text={cli} label="Copy the CLI line" />
      </div>
      <ErrorMessage error={actionError} />
      <h2>Timeline</h2>
      <ol class="timeline" data-testid="timeline">
        <li class="tl-created">Created {when(run.createdAt)}</li>
        {timeline && timelineRows(timeline).map((r) => r.node)}
        {run.completedAt && <li class="tl-end">Finished <Status status={run.status} /> {when(run.completedAt)}</li>}
      </ol>
      <div class="panes">
        <div>
          <h2>Payload</h2>
          <pre data-testid="payload">{json(run.payload)}</pre>
        </div>
        <div>
          <h2>{run.error ? "Error" : "Output"}</h2>
          {run.error ? <pre class="error-block" data-testid="error">{run.error.name ? `${run.error.name}: ` : ""}{run.error.message}{run.error.stack ? `\n${run.error.stack}` : ""}</pre> : <pre data-testid="output">{json(run.output)}</pre>}
        </div>
      </div>
      <h2>Logs</h2>
      {lines.length === 0 ? <p class="muted">No log lines yet.</p> : <Logs lines={lines} />}
    </section>
  );
}
