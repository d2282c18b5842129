import { useEffect, useState } from "preact/hooks";
import { api } from "../api.ts";
import { ErrorMessage } from "../components/status.tsx";
import { when } from "../format.ts";

interface Source { id: string; provider: string; url: string; events: string[]; tasks: string[]; secretEnv: string; secretSet: boolean; setup: string[] }
interface Delivery { id: string; source: string; status: "ACCEPTED" | "DUPLICATE" | "REJECTED"; eventId: string | null; event: string | null; verified: boolean; failure: string | null; runs: string[]; receivedAt: string }
interface Schedule { id: string; task: string; type: string; cron: string; timezone: string; externalId: string | null; active: boolean; nextRun: string | null; lastRun: string | null }

function Deliveries(props: { source: string }) {
  const [rows, setRows] = useState<Delivery[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => void api<{ data: Delivery[] }>("GET", `/api/v1/webhook-sources/${encodeURIComponent(props.source)}/deliveries?limit=25`).then((r) => setRows(r.data), setError), []);
  if (error) return <ErrorMessage error={error} />;
  if (!rows) return <p class="muted">Loading deliveries…</p>;
  if (rows.length === 0) return <p class="muted">No deliveries yet.</p>;
  return (
    <table aria-label={`Deliveries to ${props.source}`}>
      <thead><tr><th scope="col">Received</th><th scope="col">Status</th><th scope="col">Event</th><th scope="col">Signature</th><th scope="col">Runs</th></tr></thead>
      <tbody>
        {rows.map((d) => (
          <tr data-delivery={d.id}>
            <td>{when(d.receivedAt)}</td>
            <td><span class={`badge ${d.status.toLowerCase()}`}>{d.status}</span></td>
            <td class="mono">{d.event ?? "—"}{d.eventId ? ` (${d.eventId})` : ""}</td>
            <td>{d.verified ? "verified" : `refused: ${d.failure ?? "not verified"}`}</td>
            <td>{d.runs.length ? d.runs.map((id) => <a href={`/runs/${id}`} class="mono">{id} </a>) : "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Sources() {
  const [sources, setSources] = useState<Source[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => void api<{ data: Source[] }>("GET", "/api/v1/webhook-sources").then((r) => setSources(r.data), setError), []);
  return (
    <section aria-labelledby="webhooks-title">
      <h2 id="webhooks-title">Webhook sources</h2>
      <ErrorMessage error={error} />
      {sources?.length === 0 && <p class="muted">The promoted version declares no webhook source.</p>}
      {sources?.map((s) => (
        <article class="card" data-source={s.id} aria-labelledby={`source-${s.id}`}>
          <h3 id={`source-${s.id}`}>{s.id} <span class="muted">({s.provider})</span></h3>
          <p>URL: <code>{s.url}</code></p>
          <p>Starts {s.tasks.join(", ")}{s.events.length ? ` on ${s.events.join(", ")}` : ""}. Signing secret <code>{s.secretEnv}</code>: {s.secretSet ? "set" : "missing — deliveries are refused until it is set"}.</p>
          <Deliveries source={s.id} />
        </article>
      ))}
    </section>
  );
}

function Schedules() {
  const [schedules, setSchedules] = useState<Schedule[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => api<{ data: Schedule[] }>("GET", "/api/v1/schedules").then((r) => setSchedules(r.data), setError);
  useEffect(() => void load(), []);
  const toggle = async (s: Schedule) => {
    setError(null);
    try {
      await api("POST", `/api/v1/schedules/${encodeURIComponent(s.id)}/${s.active ? "deactivate" : "activate"}`, {});
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section aria-labelledby="schedules-title">
      <h2 id="schedules-title">Schedules</h2>
      <ErrorMessage error={error} />
      {schedules?.length === 0 && <p class="muted">No schedules.</p>}
      {schedules && schedules.length > 0 && (
        <table>
          <thead><tr><th scope="col">Task</th><th scope="col">Cron</th><th scope="col">Timezone</th><th scope="col">Type</th><th scope="col">Next run</th><th scope="col">Last run</th><th scope="col">State</th></tr></thead>
          <tbody>
            {schedules.map((s) => (
              <tr data-schedule={s.id}>
                <td class="mono">{s.task}{s.externalId ? ` (${s.externalId})` : ""}</td>
                <td class="mono">{s.cron}</td>
                <td>{s.timezone}</td>
                <td>{s.type.toLowerCase()}</td>
                <td>{s.nextRun ? when(s.nextRun) : "—"}</td>
                <td>{s.lastRun ? when(s.lastRun) : "never"}</td>
                <td>{s.active ? "active" : "inactive"} <button type="button" onClick={() => toggle(s)}>{s.active ? "Deactivate" : "Activate"}</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function TriggersPage() {
  return (
    <section aria-labelledby="triggers-title">
      <h1 id="triggers-title">Webhooks and schedules</h1>
      <Sources />
      <Schedules />
    </section>
  );
}
