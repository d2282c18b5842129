import { useEffect, useState } from "preact/hooks";
import { api, type Session } from "../api.ts";
import { ErrorMessage } from "../components/status.tsx";
import { when } from "../format.ts";

interface KeyInfo { id: string; environment: string; createdAt: string; revokedAt: string | null }
interface EnvVar { name: string; value?: string; source: string; updatedAt: string }

function Keys(props: { environment: string }) {
  const [project, env] = [props.environment.slice(0, props.environment.indexOf("/")), props.environment.slice(props.environment.indexOf("/") + 1)];
  const base = `/api/v1/admin/projects/${encodeURIComponent(project)}/environments/${encodeURIComponent(env)}/keys`;
  const [keys, setKeys] = useState<KeyInfo[]>([]);
  const [created, setCreated] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => api<{ data: KeyInfo[] }>("GET", base).then((r) => setKeys(r.data), setError);
  useEffect(() => void load(), []);
  const create = async () => {
    setError(null);
    try {
      setCreated((await api<{ apiKey: string }>("POST", base, {})).apiKey);
      await load();
    } catch (e) {
      setError(e);
    }
  };
  const revoke = async (id: string) => {
    setError(null);
    try {
      await api("DELETE", `${base}/${id}`);
      setConfirming(null);
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <button type="button" onClick={create}>Create a key</button>
      {created && (
        <div class="notice" role="status">
          <p>The new key, shown this once — store it now:</p>
          <code class="secret" data-testid="new-key">{created}</code> <button type="button" onClick={() => setCreated(null)}>Done</button>
        </div>
      )}
      <ErrorMessage error={error} />
      <table>
        <thead><tr><th scope="col">Key id</th><th scope="col">Created</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          {keys.map((k) => (
            <tr data-key={k.id}>
              <td class="mono">{k.id}</td>
              <td>{when(k.createdAt)}</td>
              <td>{k.revokedAt ? `revoked ${when(k.revokedAt)}` : "active"}</td>
              <td>
                {!k.revokedAt && (confirming === k.id ? (
                  <span role="group" aria-label="Confirm revoke">Revoke it? Clients using it stop working. <button type="button" autoFocus onClick={() => revoke(k.id)}>Yes, revoke</button> <button type="button" onClick={() => setConfirming(null)}>No</button></span>
                ) : <button type="button" onClick={() => setConfirming(k.id)}>Revoke</button>)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Variables() {
  const [vars, setVars] = useState<EnvVar[]>([]);
  const [shown, setShown] = useState<Record<string, string>>({});
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState<unknown>(null);
  const load = () => api<{ data: EnvVar[] }>("GET", "/api/v1/envvars").then((r) => setVars(r.data), setError);
  useEffect(() => void load(), []);
  const run = async (work: () => Promise<unknown>) => {
    setError(null);
    try {
      await work();
      await load();
    } catch (e) {
      setError(e);
    }
  };
  const reveal = (n: string) => run(async () => {
    const v = await api<EnvVar>("GET", `/api/v1/envvars/${encodeURIComponent(n)}`);
    setShown((s) => ({ ...s, [n]: v.value ?? "" }));
  });
  return (
    <section aria-labelledby="vars-title">
      <h2 id="vars-title">Environment variables</h2>
      <form class="inline" onSubmit={(e) => { e.preventDefault(); void run(async () => { await api("PUT", `/api/v1/envvars/${encodeURIComponent(name)}`, { value }); setName(""); setValue(""); }); }}>
        <label>Name <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required /></label>
        <label>Value <input type="password" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} required autoComplete="off" /></label>
        <button type="submit">Set</button>
      </form>
      <ErrorMessage error={error} />
      <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Value</th><th scope="col">From</th><th scope="col">Updated</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          {vars.map((v) => (
            <tr>
              <td class="mono">{v.name}</td>
              <td class="mono">{v.name in shown ? shown[v.name] : "••••••"}</td>
              <td>{v.source}</td>
              <td>{when(v.updatedAt)}</td>
              <td>
                {v.name in shown ? <button type="button" onClick={() => setShown(({ [v.name]: _, ...rest }) => rest)}>Hide</button> : <button type="button" onClick={() => reveal(v.name)}>Reveal</button>}{" "}
                <button type="button" onClick={() => run(() => api("DELETE", `/api/v1/envvars/${encodeURIComponent(v.name)}`))}>Delete</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Archive(props: { environment: string }) {
  const slash = props.environment.indexOf("/");
  const [project, env] = [props.environment.slice(0, slash), props.environment.slice(slash + 1)];
  const [archived, setArchived] = useState<boolean | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ data: Array<{ slug: string; environments: Array<{ slug: string; archived: boolean }> }> }>("GET", "/api/v1/admin/projects").then(
      (r) => setArchived(r.data.find((p) => p.slug === project)?.environments.find((e) => e.slug === env)?.archived ?? false),
      setError,
    );
  }, []);
  const archive = async () => {
    setError(null);
    try {
      await api("POST", `/api/v1/admin/projects/${encodeURIComponent(project)}/environments/${encodeURIComponent(env)}/archive`, {});
      setConfirming(false);
      setArchived(true);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section aria-labelledby="archive-title">
      <h2 id="archive-title">Archive</h2>
      <ErrorMessage error={error} />
      {archived ? (
        <p role="status">This environment is archived: it refuses new runs and deploys; its history stays readable.</p>
      ) : archived === false && (confirming ? (
        <span role="group" aria-label="Confirm archive">Archive {props.environment}? New runs and deploys to it are refused. <button type="button" autoFocus onClick={archive}>Yes, archive</button> <button type="button" onClick={() => setConfirming(false)}>No</button></span>
      ) : <button type="button" onClick={() => setConfirming(true)}>Archive this environment</button>)}
    </section>
  );
}

export function Environments(props: { session: Session; environment: string }) {
  return (
    <section aria-labelledby="env-title">
      <h1 id="env-title">Environment {props.environment}</h1>
      {props.session.kind === "admin" ? <Keys key={props.environment} environment={props.environment} /> : <p class="muted">API keys are managed with the admin token (sign in with it to create or revoke keys).</p>}
      <Variables key={props.environment} />
      {props.session.kind === "admin" && <Archive key={props.environment} environment={props.environment} />}
    </section>
  );
}
