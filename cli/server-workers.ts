// `stasis server --workers N`: the primary process forks N server processes (node:cluster) that share
// the listening port, each with its own event loop and pool on the one database — replicas on one
// host, as separate `stasis server` processes behind a load balancer would be. The primary keeps N
// alive: a worker that dies after the start is replaced. It serves no request itself.
import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import { CliError, ExitCode, progress } from "./output.ts";

/** `--workers`: a whole number ≥ 1, or `auto` (one per CPU this process may use). */
export function parseWorkers(text: string): number {
  if (text === "auto") return availableParallelism();
  const count = Number(text);
  if (!Number.isSafeInteger(count) || count < 1) throw new CliError(`--workers must be a whole number >= 1 or auto, not ${JSON.stringify(text)}`, ExitCode.USAGE);
  return count;
}

/** Set in the environment of every forked worker: which process is a worker, whatever cluster says in a nested tool. */
const SERVER_WORKER_ENV = "STASIS_SERVER_WORKER";

export interface ServerWorkers {
  /** Resolves once every worker listens; rejects when one exits before it does (its exit code on the error). */
  listening: Promise<void>;
  /** SIGTERM to every worker, then waits for them to exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

const RESTART_DELAY_MS = 1000;

export function startServerWorkers(count: number, env: Record<string, string>): ServerWorkers {
  const workers = new Set<Worker>();
  let stopping = false;
  let started = false;

  let resolveListening!: () => void;
  let rejectListening!: (error: Error) => void;
  const listening = new Promise<void>((resolve, reject) => ((resolveListening = resolve), (rejectListening = reject)));
  let listeningCount = 0;

  const fork = () => {
    const worker = cluster.fork({ ...env, [SERVER_WORKER_ENV]: "1" });
    workers.add(worker);
    worker.once("listening", () => {
      if (started) return progress(`stasis server: worker ${worker.process.pid} replaced the one that exited`);
      if (++listeningCount === count) {
        started = true;
        resolveListening();
      }
    });
    worker.once("exit", (code, signal) => {
      workers.delete(worker);
      if (stopping) return;
      if (!started) {
        // A worker that cannot start (a taken port, a bad setting) said why on stderr: the others go too.
        stopping = true;
        for (const w of workers) w.process.kill("SIGTERM");
        return rejectListening(new CliError(`a server worker exited before it listened (${signal ?? `exit code ${code}`})`, code && code > 0 ? code : ExitCode.FAILURE));
      }
      progress(`stasis server: worker ${worker.process.pid} exited (${signal ?? `exit code ${code}`}); starting another`);
      setTimeout(() => void (stopping || fork()), RESTART_DELAY_MS).unref();
    });
  };
  for (let i = 0; i < count; i++) fork();

  return {
    listening,
    async stop(graceMs = 30_000) {
      stopping = true;
      const exited = [...workers].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once("exit", () => resolve()))));
      for (const w of workers) w.process.kill("SIGTERM");
      const force = setTimeout(() => {
        for (const w of workers) w.process.kill("SIGKILL");
      }, graceMs);
      await Promise.all(exited);
      clearTimeout(force);
    },
  };
}

/** Whether this process is a worker forked by `startServerWorkers`. */
export function isServerWorker(): boolean {
  return cluster.isWorker && process.env[SERVER_WORKER_ENV] === "1";
}
