import { callStasisApi } from "../builder/index.ts";
import type { LogsResponse, RunView } from "../schemas/index.ts";
import type { z } from "zod";

type Logs = z.infer<typeof LogsResponse>;

export interface RunReporterOptions {
  apiUrl: string;
  apiKey: string;
  /** Print one event: a JSON object with --json, else the human line. */
  emit(event: Record<string, unknown>, human: string): void;
  /** false: do not print the tasks' own log lines. */
  taskLogs: boolean;
  /** Dim task log lines (a terminal). */
  dim: boolean;
}

const short = (runId: string) => runId.slice(0, 12);
const FINAL = new Set(["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "EXPIRED"]);

/**
 * What `stasis dev` prints about runs: each run's log lines as they come (prefixed with task and
 * run), and how each attempt ended — completed, failed with its error, retrying in how long, frozen.
 */
export function createRunReporter(options: RunReporterOptions) {
  const following = new Map<string, AbortController>();
  const api = <T>(path: string) => callStasisApi<T>(options.apiUrl, options.apiKey, "GET", path);

  async function follow(runId: string, signal: AbortSignal): Promise<void> {
    const run = await api<RunView>(`/api/v1/runs/${runId}`);
    let after = 0;
    while (!signal.aborted) {
      const page = await api<Logs>(`/api/v1/runs/${runId}/logs?after=${after}&waitMs=10000`);
      after = page.next;
      for (const line of page.data) {
        const data = line.data && Object.keys(line.data).length ? ` ${JSON.stringify(line.data)}` : "";
        const text = `  [${run.taskId} ${short(runId)}] ${line.level.toUpperCase().padEnd(5)} ${line.message}${data}`;
        options.emit({ type: "run.log", runId, taskId: run.taskId, attempt: line.attempt, level: line.level, message: line.message, ...(line.data ? { data: line.data } : {}) }, options.dim ? `\x1b[2m${text}\x1b[22m` : text);
      }
      if (page.runFinished) break;
    }
    following.delete(runId);
  }

  /** Attempts already reported, per run: an attempt's end is printed once, however late it is seen. */
  const reported = new Map<string, Set<number>>();

  async function ended(runId: string): Promise<void> {
    const run = await api<RunView>(`/api/v1/runs/${runId}`);
    const name = `run ${short(runId)} (${run.taskId})`;
    const seen = reported.get(runId) ?? new Set<number>();
    reported.set(runId, seen);
    const errorText = (e: RunView["error"]) => (e ? `${e.name}: ${e.message}` : "");
    // An attempt that failed while the run goes on (the retry may have started already).
    for (const attempt of run.attemptDetails ?? []) {
      if (attempt.status !== "FAILED" || seen.has(attempt.number) || attempt.number === run.attempts && FINAL.has(run.status)) continue;
      seen.add(attempt.number);
      const retryAt = run.status === "RETRYING" ? run.availableAt : null;
      const wait = retryAt ? `in ${Math.max(0, Math.round((Date.parse(retryAt) - Date.now()) / 100) / 10)} s` : "now";
      options.emit({ type: "run.retrying", runId, taskId: run.taskId, attempt: attempt.number, error: attempt.error, retryAt }, `${name} attempt ${attempt.number} failed: ${errorText(attempt.error)} — retrying ${wait}`);
    }
    if (!FINAL.has(run.status) || seen.has(0)) return;
    seen.add(0); // the run's end
    if (run.status === "COMPLETED") {
      options.emit({ type: "run.completed", runId, taskId: run.taskId, durationMs: run.durationMs }, `${name} completed${run.durationMs !== null ? ` in ${run.durationMs} ms` : ""}`);
    } else {
      const how = run.status === "FAILED" ? "failed" : run.status.toLowerCase().replace("_", " ");
      options.emit({ type: "run.failed", runId, taskId: run.taskId, status: run.status, error: run.error }, `${name} ${how}${run.error ? `: ${errorText(run.error)}` : ""}`);
    }
  }

  return {
    /** A runner event of this dev's runners. */
    onRunnerEvent(event: { type: string; runId: string; runner: string }): void {
      if (event.type === "claimed") {
        options.emit({ type: "run.claimed", runId: event.runId, runner: event.runner }, `run ${short(event.runId)} started (${event.runner})`);
        if (options.taskLogs && !following.has(event.runId)) {
          const controller = new AbortController();
          following.set(event.runId, controller);
          follow(event.runId, controller.signal).catch(() => following.delete(event.runId));
        }
      } else if (event.type === "suspended") {
        options.emit({ type: "run.suspended", runId: event.runId, runner: event.runner }, `run ${short(event.runId)} frozen — no process is running; it resumes when its wait ends`);
      } else if (event.type === "finished") {
        ended(event.runId).catch(() => {});
      }
    },
    stop(): void {
      for (const controller of following.values()) controller.abort();
      following.clear();
    },
  };
}
