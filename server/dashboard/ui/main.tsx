import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, setSessionContext, type Session } from "./api.ts";
import { ConnectionsPage } from "./pages/connections.tsx";
import { Deployments } from "./pages/deployments.tsx";
import { Environments } from "./pages/environments.tsx";
import { RunPage } from "./pages/run.tsx";
import { Runs } from "./pages/runs.tsx";
import { SignIn } from "./pages/sign-in.tsx";
import { TasksPage } from "./pages/tasks.tsx";
import { TestPage } from "./pages/test.tsx";
import { TriggersPage } from "./pages/triggers.tsx";
import { navigate, onLinkClick, useLocation } from "./router.ts";
import { ALL_ENVIRONMENTS, EnvironmentPicker, type EnvChoice } from "./components/environment-picker.tsx";

const ENV_STORAGE = "stasis.environment";

function App() {
  const { path, query } = useLocation();
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [expired, setExpired] = useState<string | null>(null);
  const [acting, setActing] = useState<string>(localStorage.getItem(ENV_STORAGE) ?? "");

  const signedOut = (error: ApiError) => {
    setSession(null);
    setExpired(error.message);
  };
  useEffect(() => {
    // A one-time login link (`stasis dev`): the page posts its token, so merely fetching the link uses nothing up.
    const token = path === "/login" ? query.get("token") : null;
    if (token) {
      history.replaceState(null, "", "/");
      api<Session>("POST", "/api/v1/dashboard/login", { token }).then(setSession, (error: ApiError) => {
        setSession(null);
        setExpired(error.message);
      });
      return;
    }
    api<Session>("GET", "/api/v1/dashboard/session").then(setSession, (error: ApiError) => {
      setSession(null);
      if (error.code === "SESSION_EXPIRED") setExpired(error.message);
    });
  }, []);
  const environment = session?.kind === "env" ? `${session.project}/${session.environment}` : acting;
  const everywhere = session?.kind === "admin" && acting === ALL_ENVIRONMENTS;
  setSessionContext(session ?? null, session?.kind === "admin" && !everywhere ? acting : "", signedOut);

  if (session === undefined) return <main id="main"><p>Loading…</p></main>;
  if (session === null) {
    return <SignIn message={expired} onSignedIn={(s) => { setExpired(null); setSession(s); navigate("/"); }} />;
  }
  const choose = (choice: EnvChoice) => {
    localStorage.setItem(ENV_STORAGE, choice);
    setActing(choice);
  };
  const signOut = async () => {
    await api("POST", "/api/v1/dashboard/sign-out").catch(() => {});
    setSession(null);
  };
  const ready = Boolean(environment);
  let page;
  if (!ready) page = <p>Choose an environment above.</p>;
  else if (everywhere && path === "/") page = <Runs key="all" all={{ open: (env, runId) => { choose(env); navigate(`/runs/${runId}`); } }} />;
  else if (everywhere) page = <p>This page shows one environment: choose it above (All environments lists runs only).</p>;
  else if (path.startsWith("/runs/")) page = <RunPage key={`${environment}:${path}`} id={decodeURIComponent(path.slice("/runs/".length))} />;
  else if (path === "/test") page = <TestPage key={environment} />;
  else if (path === "/tasks") page = <TasksPage key={environment} environment={environment} />;
  else if (path === "/triggers") page = <TriggersPage key={environment} />;
  else if (path === "/deployments") page = <Deployments key={environment} session={session} environment={environment} />;
  else if (path === "/connections") page = <ConnectionsPage key={environment} connected={query.get("connected")} />;
  else if (path === "/environments") page = <Environments key={environment} session={session} environment={environment} />;
  else page = <Runs key={environment} />;
  const nav = [
    ["/", "Runs"],
    ["/tasks", "Tasks"],
    ["/test", "Test"],
    ["/triggers", "Webhooks & schedules"],
    ["/deployments", "Deployments"],
    ["/connections", "Connections"],
    ["/environments", "Environments"],
  ] as const;
  const current = path.startsWith("/runs") ? "/" : path;
  return (
    <div onClick={(e) => onLinkClick(e as unknown as MouseEvent)}>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <strong class="brand">Stasis</strong>
        <nav aria-label="Pages">
          {nav.map(([href, label]) => (
            <a href={href} aria-current={current === href ? "page" : undefined}>{label}</a>
          ))}
        </nav>
        <div class="who">
          {session.kind === "admin" ? (
            <EnvironmentPicker value={acting} onChange={choose} />
          ) : (
            <span data-testid="environment">{environment}</span>
          )}
          <span class="muted">{session.kind === "admin" ? "admin" : "API key"}</span>
          <button type="button" onClick={signOut}>Sign out</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>{page}</main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
