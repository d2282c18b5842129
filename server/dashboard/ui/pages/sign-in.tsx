import { useState } from "preact/hooks";
import { api, type Session } from "../api.ts";
import { ErrorMessage } from "../components/status.tsx";

export function SignIn(props: { message: string | null; onSignedIn(session: Session): void }) {
  const [credential, setCredential] = useState("");
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      props.onSignedIn(await api<Session>("POST", "/api/v1/dashboard/sign-in", { credential }));
    } catch (e) {
      setError(e);
    }
  };
  return (
    <main id="main" class="sign-in">
      <h1>Sign in to Stasis</h1>
      {props.message && <p class="notice" role="status">{props.message}</p>}
      <form onSubmit={submit}>
        <label for="credential">An environment's API key (sk_…) or the admin token</label>
        <input id="credential" type="password" autoComplete="off" value={credential} onInput={(e) => setCredential((e.target as HTMLInputElement).value)} required />
        <button type="submit">Sign in</button>
      </form>
      <ErrorMessage error={error} />
      <p class="muted">An API key shows its own environment only; the admin token shows every project and environment. `stasis dev` prints a one-click link.</p>
    </main>
  );
}
