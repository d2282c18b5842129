import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.ts";
import { ErrorMessage } from "../components/status.tsx";
import { json } from "../format.ts";
import { navigate } from "../router.ts";
import type { Deployment } from "./deployments.tsx";
import type { RunView } from "./runs.tsx";

/** Pick a task of the promoted version, edit a JSON payload (the last run's), trigger, land on the run. */
export function TestPage() {
  const [tasks, setTasks] = useState<string[]>([]);
  const [task, setTask] = useState("");
  const [payload, setPayload] = useState("{}");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  // The last run's payload fills the box only until the person types: a late answer never overwrites an edit.
  const edited = useRef(false);

  useEffect(() => {
    api<{ data: Deployment[] }>("GET", "/api/v1/deployments").then((r) => {
      const promoted = r.data.find((d) => d.promoted);
      setTasks(promoted?.tasks ?? []);
      if (promoted?.tasks.length) setTask(promoted.tasks[0]);
    }, setError);
  }, []);
  useEffect(() => {
    if (!task) return;
    edited.current = false;
    api<{ data: RunView[] }>("GET", `/api/v1/runs?task=${encodeURIComponent(task)}&limit=1`).then(
      (r) => edited.current || setPayload(r.data.length ? json(r.data[0].payload) : "{}"),
      () => {},
    );
  }, [task]);

  const trigger = async (event: Event) => {
    event.preventDefault();
    setError(null);
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch (e) {
      setError(new Error(`The payload is not valid JSON: ${(e as Error).message}. Nothing was triggered.`));
      return;
    }
    setBusy(true);
    try {
      const started = await api<{ id: string }>("POST", `/api/v1/tasks/${encodeURIComponent(task)}/trigger`, { payload: parsed });
      navigate(`/runs/${started.id}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="test-title">
      <h1 id="test-title">Test a task</h1>
      {tasks.length === 0 ? (
        <p class="muted">No promoted version with tasks in this environment yet: deploy first.</p>
      ) : (
        <form onSubmit={trigger} class="stack">
          <label>
            Task
            <select value={task} onChange={(e) => setTask((e.target as HTMLSelectElement).value)} data-testid="task">
              {tasks.map((t) => <option value={t}>{t}</option>)}
            </select>
          </label>
          <label for="payload">Payload (JSON; prefilled from this task's last run)</label>
          <textarea id="payload" rows={12} value={payload} onInput={(e) => ((edited.current = true), setPayload((e.target as HTMLTextAreaElement).value))} spellcheck={false} class="mono" />
          <button type="submit" disabled={busy}>Trigger</button>
        </form>
      )}
      <ErrorMessage error={error} />
    </section>
  );
}
