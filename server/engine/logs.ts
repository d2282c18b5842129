import { isFinalRunStatus, type LogLine, type RunStatus } from "../../schemas/index.ts";
import { leaseLost, notFound } from "../errors.ts";
import type { Engine } from "./context.ts";
import { notify, notifyRunChanges } from "./notify.ts";

export interface AppendLine {
  ts: string;
  level: LogLine["level"];
  message: string;
  data?: Record<string, unknown>;
}

/**
 * Lines get consecutive per-run seq numbers reserved with one UPDATE on the run row (which also
 * checks the lease), so lines from before and after a suspend/restore — different runners,
 * different attempts — stay in one ordered log.
 */
export async function appendLogs(engine: Engine, runId: string, leaseId: string, lines: AppendLine[]): Promise<number> {
  return await engine.db.transaction(async (trx) => {
    const [row] = await trx("runs").where({ id: runId, lease_id: leaseId }).increment("log_seq", lines.length).returning(["log_seq", "attempt_count", "environment_id"]);
    if (!row) {
      const exists = await trx("runs").where({ id: runId }).first("id");
      throw exists ? leaseLost(runId) : notFound(`run ${runId} does not exist`, "runId");
    }
    const first = Number(row.log_seq) - lines.length + 1;
    if (lines.length > 0) {
      // Defence in depth: the runner redacted with the variables of its claim; this uses the current ones.
      // (Variables that no longer decrypt must not lose the lines: the runner's redaction stands alone then.)
      const redact = await engine.redactorFor?.({ id: runId, environmentId: row.environment_id }).catch((error: Error) => {
        engine.logger.error({ runId, err: error.message }, "cannot read the environment's variables to redact logs");
        return null;
      });
      await trx("run_logs").insert(
        lines.map((line, i) => ({
          run_id: runId,
          seq: first + i,
          ts: new Date(line.ts),
          level: line.level,
          message: redact ? redact.text(line.message) : line.message,
          attempt: row.attempt_count,
          data: line.data ? JSON.stringify(redact ? redact.deep(line.data) : line.data) : null,
        })),
      );
      await notify(trx, "logs");
      await notifyRunChanges(trx, [{ env: row.environment_id, run: runId, what: "logs" }]);
    }
    return Number(row.log_seq);
  });
}

export async function readLogs(engine: Engine, runId: string, query: { after: number; limit: number; waitMs: number }): Promise<{ data: LogLine[]; next: number; runFinished: boolean }> {
  const deadline = Date.now() + query.waitMs;
  for (;;) {
    const run = await engine.db("runs").where({ id: runId }).first("status");
    if (!run) throw notFound(`run ${runId} does not exist`, "id");
    const rows = await engine.db("run_logs").where("run_id", runId).andWhere("seq", ">", query.after).orderBy("seq").limit(query.limit);
    const runFinished = isFinalRunStatus(run.status as RunStatus);
    const left = deadline - Date.now();
    if (rows.length > 0 || runFinished || left <= 0) {
      return {
        data: rows.map((r) => ({
          seq: Number(r.seq),
          ts: r.ts.toISOString(),
          level: r.level,
          message: r.message,
          attempt: r.attempt,
          ...(r.data ? { data: r.data } : {}),
        })),
        next: rows.length > 0 ? Number(rows[rows.length - 1].seq) : query.after,
        runFinished,
      };
    }
    // Woken by new lines or a run state change; re-read after at most 1 s either way.
    await engine.listener.waitFor("logs", Math.min(left, 1000));
  }
}
