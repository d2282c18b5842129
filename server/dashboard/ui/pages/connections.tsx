import { useEffect, useState } from "preact/hooks";
import { api } from "../api.ts";
import { ErrorMessage } from "../components/status.tsx";
import { when } from "../format.ts";

interface Integration { slug: string; provider: string; kind: "oauth" | "api_key"; issuer: string | null; tokenEndpoint: string | null; scopes: string[]; connections: number }
interface Connection { id: string; integration: string; externalId: string | null; account: string | null; scopes: string[]; expiresAt: string | null; lastRefreshAt: string | null; status: "active" | "broken"; brokenReason: string | null }

/** Integrations of the environment, a Connect button each (the team's account), and every connection with revoke. */
export function ConnectionsPage(props: { connected: string | null }) {
  const [integrations, setIntegrations] = useState<Integration[]>([]);
  const [connections, setConnections] = useState<Connection[]>([]);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = async () => {
    try {
      const [i, c] = await Promise.all([api<{ data: Integration[] }>("GET", "/api/v1/integrations"), api<{ data: Connection[] }>("GET", "/api/v1/connections")]);
      setIntegrations(i.data);
      setConnections(c.data);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => void load(), []);
  const connect = async (slug: string) => {
    setError(null);
    try {
      location.assign((await api<{ url: string }>("POST", `/api/v1/integrations/${encodeURIComponent(slug)}/connect`, {})).url);
    } catch (e) {
      setError(e);
    }
  };
  const revoke = async (id: string) => {
    setError(null);
    try {
      await api("DELETE", `/api/v1/connections/${id}`);
      setConfirming(null);
      await load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div>
      <h1>Connections</h1>
      {props.connected && <p class="notice" role="status">Connected {props.connected}.</p>}
      <ErrorMessage error={error} />
      <section aria-labelledby="integrations-title">
        <h2 id="integrations-title">Integrations</h2>
        {integrations.length === 0 ? <p>No integrations in this environment. Add one with <code>stasis integrations add</code>.</p> : (
          <table>
            <thead><tr><th scope="col">Integration</th><th scope="col">Provider</th><th scope="col">Scopes</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              {integrations.map((i) => (
                <tr data-integration={i.slug}>
                  <td class="mono">{i.slug}</td>
                  <td>{i.provider}{i.issuer ? ` (${i.issuer})` : ""}</td>
                  <td>{i.scopes.join(" ") || "—"}</td>
                  <td>{i.kind === "oauth" ? <button type="button" onClick={() => connect(i.slug)}>Connect {i.slug}</button> : "API key (through a Connect link)"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="connections-title">
        <h2 id="connections-title">Connected accounts</h2>
        {connections.length === 0 ? <p>No accounts connected yet.</p> : (
          <table>
            <thead><tr><th scope="col">Integration</th><th scope="col">For</th><th scope="col">Account</th><th scope="col">Scopes</th><th scope="col">Expires</th><th scope="col">Last refresh</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              {connections.map((c) => (
                <tr data-connection={c.id} data-status={c.status}>
                  <td class="mono">{c.integration}</td>
                  <td>{c.externalId ?? "the team"}</td>
                  <td>{c.account ?? "—"}</td>
                  <td>{c.scopes.join(" ") || "—"}</td>
                  <td>{c.expiresAt ? when(c.expiresAt) : "never"}</td>
                  <td>{c.lastRefreshAt ? when(c.lastRefreshAt) : "not yet"}</td>
                  <td>{c.status === "broken" ? <span title={c.brokenReason ?? undefined}>broken: {c.brokenReason}</span> : "active"}</td>
                  <td>
                    {confirming === c.id ? (
                      <span role="group" aria-label="Confirm revoke">Revoke it? Code using it stops getting tokens. <button type="button" autoFocus onClick={() => revoke(c.id)}>Yes, revoke</button> <button type="button" onClick={() => setConfirming(null)}>No</button></span>
                    ) : <button type="button" onClick={() => setConfirming(c.id)}>Revoke</button>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
