import { useEffect, useState } from "preact/hooks";
import { api, type Session } from "../api.ts";
import { ErrorMessage, Status } from "../components/status.tsx";
import { when } from "../format.ts";

export interface Deployment {
  id: string;
  version: string;
  status: string;
  imageRef: string | null;
  imageDigest: string | null;
  tasks: string[];
  promoted: boolean;
  commit: { sha?: string; branch?: string; message?: string; repository?: string } | null;
  createdAt: string;
  deployedAt: string | null;
  copiedFrom?: { environment: string; version: string } | null;
}

interface EnvironmentView { slug: string; archived: boolean; promotedVersion: string | null }

/** Where a version came from, as far as the server knows: a commit means CI (the Action or the App). */
function source(d: Deployment): string {
  if (d.copiedFrom) return `copied from ${d.copiedFrom.environment} ${d.copiedFrom.version}`;
  if (!d.commit) return "CLI";
  return d.commit.repository ? `GitHub ${d.commit.repository}` : "CI";
}

/** A button that asks once more, in the page (keyboard and screen readers see the question). */
function Confirmed(props: { label: string; question: string; onConfirm(): Promise<void> }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return <button type="button" onClick={() => setAsking(true)}>{props.label}</button>;
  return (
    <span class="confirm" role="group" aria-label={props.question}>
      <span>{props.question}</span>{" "}
      <button type="button" autoFocus onClick={async () => { await props.onConfirm(); setAsking(false); }}>Yes, {props.label.toLowerCase()}</button>{" "}
      <button type="button" onClick={() => setAsking(false)}>No</button>
    </span>
  );
}

export function Deployments(props: { session: Session; environment: string }) {
  const [list, setList] = useState<Deployment[]>([]);
  const [previews, setPreviews] = useState<EnvironmentView[]>([]);
  const [error, setError] = useState<unknown>(null);
  const load = () => api<{ data: Deployment[] }>("GET", "/api/v1/deployments").then((r) => setList(r.data), setError);
  useEffect(() => {
    void load();
    if (props.session.kind === "admin") {
      const project = props.environment.split("/")[0];
      api<{ data: EnvironmentView[] }>("GET", `/api/v1/admin/projects/${encodeURIComponent(project)}/environments`).then((r) => setPreviews(r.data.filter((e) => e.slug.startsWith("preview/"))), () => {});
    }
  }, []);
  const act = async (path: string) => {
    setError(null);
    try {
      await api("POST", path);
      await load();
    } catch (e) {
      setError(e);
    }
  };
  const promoted = list.find((d) => d.promoted);
  const [project, target] = [props.environment.slice(0, props.environment.indexOf("/")), props.environment.slice(props.environment.indexOf("/") + 1)];
  const copy = async (from: string, version: string) => {
    setError(null);
    try {
      await api("POST", `/api/v1/admin/projects/${encodeURIComponent(project)}/deployments/copy`, { version, from, to: target, promote: true });
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section aria-labelledby="deployments-title">
      <h1 id="deployments-title">Deployments of {props.environment}</h1>
      <p>
        Promoted: <strong class="mono" data-testid="promoted">{promoted?.version ?? "none"}</strong>{" "}
        {promoted && <Confirmed label="Roll back" question={`Roll ${props.environment} back to the version promoted before ${promoted.version}?`} onConfirm={() => act("/api/v1/deployments/rollback")} />}
      </p>
      <ErrorMessage error={error} />
      <table>
        <thead>
          <tr><th scope="col">Version</th><th scope="col">Status</th><th scope="col">Image digest</th><th scope="col">Tasks</th><th scope="col">Commit</th><th scope="col">Source</th><th scope="col">Deployed</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr>
        </thead>
        <tbody>
          {list.map((d) => (
            <tr data-version={d.version}>
              <td class="mono">{d.version}{d.promoted && <span class="badge promoted-badge"> promoted</span>}</td>
              <td><Status status={d.status} /></td>
              <td class="mono" title={d.imageDigest ?? ""}>{d.imageDigest ? `${d.imageDigest.slice(0, 19)}…` : "—"}</td>
              <td>{d.tasks.join(", ")}</td>
              <td>{d.commit?.sha ? <span class="mono" title={d.commit.message}>{d.commit.sha.slice(0, 7)}{d.commit.branch ? ` (${d.commit.branch})` : ""}</span> : "—"}</td>
              <td>{source(d)}</td>
              <td>{when(d.deployedAt)}</td>
              <td>{d.status === "DEPLOYED" && !d.promoted && <Confirmed label="Promote" question={`Promote ${d.version} in ${props.environment}? New runs will use it.`} onConfirm={() => act(`/api/v1/deployments/${d.version}/promote`)} />}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.session.kind === "admin" && (
        <>
          <h2>Preview environments</h2>
          <p class="muted">A preview's version can go to {target} as is: a new version here with the same image digest and manifest, nothing rebuilt.</p>
          {previews.length === 0 ? <p class="muted">No pull request previews in this project.</p> : (
            <ul>
              {previews.map((p) => (
                <li data-preview={p.slug}>
                  {p.slug} — {p.archived ? "archived" : "active"} · promoted <span class="mono">{p.promotedVersion ?? "none"}</span>{" "}
                  {p.promotedVersion && target !== p.slug && (
                    <Confirmed
                      label={`Promote to ${target} as is`}
                      question={`Deploy ${p.slug} ${p.promotedVersion} to ${target} as a new version with the same image (no rebuild) and promote it?`}
                      onConfirm={() => copy(p.slug, p.promotedVersion!)}
                    />
                  )}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
