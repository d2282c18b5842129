import { inTransaction } from "../db/transaction.ts";
import { isFinalRunStatus } from "../../schemas/index.ts";
import { lockDueWaitpoints } from "../sql/complete-waitpoint.ts";
import { lockExpiredLeases } from "../sql/expire-leases.ts";
import { extendLeasesAfterStart } from "../sql/extend-leases.ts";
import { cancelLocked } from "./cancel-run.ts";
import type { Engine } from "./context.ts";
import { executedMs } from "./lease.ts";
import { notify, notifyResumeQueued } from "./notify.ts";
import { recoverRun } from "./recover-run.ts";
import type { RunRow } from "./rows.ts";
import { transitionRun } from "./transition.ts";
import { completeWaitpoint } from "./waitpoints.ts";
import { runDueSchedules } from "../schedules/run-due-schedules.ts";
import { sweepExpiredConnectRows } from "../connections/sweep-expired.ts";

const BATCH = 100;

export interface Scheduler {
  /** Runs one sweep now (tests use it to avoid waiting). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One loop for every server-clock deadline. It sweeps what is due, asks PostgreSQL for the earliest
 * next due time (each a min() over a partial index), and sleeps until then — or until a NOTIFY on
 * the `scheduler` topic says a new deadline was written. No per-second scan of all rows.
 */
export function createScheduler(engine: Engine): Scheduler {
  let stopped = false;
  let lastSweep = new Date(0);
  let running: Promise<void> | null = null;
  let lastConnectSweep = 0;

  const sweep = async (): Promise<void> => {
    const since = lastSweep;
    lastSweep = new Date();
    await sweepWaitpoints(engine);
    await sweepLeases(engine);
    await sweepDeadlines(engine);
    await sweepPendingVersions(engine);
    await sweepBuilds(engine);
    await runDueSchedules(engine);
    // Delayed and retrying runs that became due since the last sweep: wake the runners' polls.
    const due = await engine.db("runs").whereIn("status", ["DELAYED", "RETRYING"]).where("available_at", ">", since).where("available_at", "<=", engine.db.fn.now()).first("id");
    // Resumes whose hold for the runner with their dump ended (resume-hold.ts): any runner may take them now.
    const released = due ? undefined : await engine.db("runs").where({ status: "QUEUED" }).whereNotNull("resume_held_until").where("resume_held_until", ">", since).where("resume_held_until", "<=", engine.db.fn.now()).first("id");
    if (released) await notifyResumeQueued(engine.db);
    else if (due) await notify(engine.db, "runs");
    // Housekeeping, not a deadline: at most once per interval, and its failure does not fail the sweep.
    if (Date.now() - lastConnectSweep >= engine.config.connectSweepIntervalMs) {
      lastConnectSweep = Date.now();
      await sweepExpiredConnectRows(engine.db, engine.config.connectRetentionMs).catch((error: Error) => engine.logger.error({ err: error.message }, "deleting expired OAuth states and Connect links failed"));
    }
  };

  const tick = async (): Promise<void> => {
    while (running) await running.catch(() => {});
    running = sweep();
    try {
      await running;
    } finally {
      running = null;
    }
  };

  const loop = async () => {
    try {
      const extended = await extendLeasesAfterStart(engine.db, engine.config.leaseMs);
      if (extended > 0) engine.logger.info({ extended }, "server started: live leases get one more lease period to reach it");
    } catch (error) {
      engine.logger.error({ err: error }, "could not extend live leases at start");
    }
    while (!stopped) {
      try {
        earliestWake = null;
        await tick();
        const next = await nextDue(engine);
        const sleep = next === null ? engine.config.schedulerMaxSleepMs : Math.min(engine.config.schedulerMaxSleepMs, Math.max(0, next.getTime() - Date.now()) + 5);
        const sleepEnd = Date.now() + sleep;
        // Wakes are emitted right after commit, so one may arrive while the sweep or nextDue runs;
        // waitFor would not hear it. Sweep again at once if it was about a deadline before sleepEnd.
        if (earliestWake !== null && earliestWake < sleepEnd) continue;
        // A wake about a deadline later than this sleep's end (a new lease, say) changes nothing.
        if (!stopped) await engine.listener.waitFor("scheduler", sleep, undefined, sleepEnd);
      } catch (error) {
        if (stopped) break;
        engine.logger.error({ err: error }, "scheduler sweep failed");
        await engine.listener.waitFor("scheduler", 1000);
      }
    }
  };
  /** The earliest deadline a wake announced since this loop iteration began (-Infinity: no deadline given). */
  let earliestWake: number | null = null;
  const recordWake = (due?: number) => {
    const at = due ?? -Infinity;
    earliestWake = earliestWake === null ? at : Math.min(earliestWake, at);
  };
  engine.listener.events.on("scheduler", recordWake);
  const done = loop().finally(() => engine.listener.events.off("scheduler", recordWake));

  return {
    tick,
    async stop() {
      stopped = true;
      engine.listener.events.emit("scheduler");
      await done;
    },
  };
}

async function nextDue(engine: Engine): Promise<Date | null> {
  const timeoutMs = engine.config.deploymentHeartbeatTimeoutMs;
  const { rows } = await engine.db.raw(
    `SELECT LEAST(
       (SELECT min(due_at) FROM waitpoints WHERE status = 'PENDING' AND due_at IS NOT NULL),
       (SELECT min(lease_expires_at) FROM runs WHERE status IN ('EXECUTING', 'WAITING')),
       (SELECT min(deadline_at) FROM runs WHERE status = 'EXECUTING'),
       (SELECT min(expires_at) FROM runs WHERE status = 'PENDING_VERSION'),
       (SELECT min(available_at) FROM runs WHERE status IN ('QUEUED', 'DELAYED', 'RETRYING') AND available_at > now()),
       (SELECT min(resume_held_until) FROM runs WHERE status = 'QUEUED' AND resume_held_until IS NOT NULL AND resume_held_until > now()),
       (SELECT min(heartbeat_at) + make_interval(secs => ? / 1000.0) FROM deployments WHERE status IN ('PENDING', 'BUILDING')),
       (SELECT min(next_run_at) FROM schedules WHERE active)
     ) AS next`,
    [timeoutMs],
  );
  return rows[0].next ?? null;
}

async function sweepWaitpoints(engine: Engine): Promise<void> {
  await inTransaction(engine.db, async (trx) => {
    for (const wp of await lockDueWaitpoints(trx, BATCH)) {
      if (wp.kind === "duration" || wp.kind === "until") await completeWaitpoint(trx, wp.id, { kind: "duration" });
      else await completeWaitpoint(trx, wp.id, { kind: "timeout", message: `${wp.kind === "event" ? `event ${wp.event_name}` : "request"} did not arrive in time` }, "TIMED_OUT");
    }
  });
}

async function sweepLeases(engine: Engine): Promise<void> {
  await inTransaction(engine.db, async (trx) => {
    for (const run of await lockExpiredLeases(trx, BATCH)) {
      engine.logger.warn({ runId: run.id, runnerId: run.runner_id, attempt: run.attempt_count }, "lease expired; recovering run");
      await recoverRun(trx, run, "lease-expired");
    }
  });
}

async function sweepDeadlines(engine: Engine): Promise<void> {
  await inTransaction(engine.db, async (trx) => {
    const rows = (await trx("runs").where("status", "EXECUTING").where("deadline_at", "<=", trx.fn.now()).orderBy("deadline_at").limit(BATCH).forUpdate().skipLocked()) as RunRow[];
    for (const run of rows) {
      const message = `run exceeded its maxDuration of ${run.max_duration_s}s of execution`;
      await transitionRun(trx, run, "TIMED_OUT", {
        execution_ms: executedMs(run),
        execution_started_at: null,
        deadline_at: null,
        lease_expires_at: null,
        stop_pending: true,
        stop_reason: message,
        error: JSON.stringify({ name: "MaxDurationExceededError", message }),
      });
      await trx("run_attempts").where({ run_id: run.id, number: run.attempt_count, status: "EXECUTING" }).update({ status: "FAILED", ended_at: trx.fn.now(), error: JSON.stringify({ name: "MaxDurationExceededError", message }) });
      const children = (await trx("runs").where({ parent_run_id: run.id }).forUpdate()) as RunRow[];
      for (const child of children) if (!isFinalRunStatus(child.status)) await cancelLocked(trx, child, `parent run ${run.id} timed out`);
    }
    if (rows.length) await notify(trx, "runs");
  });
}

async function sweepPendingVersions(engine: Engine): Promise<void> {
  await inTransaction(engine.db, async (trx) => {
    const rows = (await trx("runs").where("status", "PENDING_VERSION").where("expires_at", "<=", trx.fn.now()).limit(BATCH).forUpdate().skipLocked()) as RunRow[];
    for (const run of rows) {
      await transitionRun(trx, run, "EXPIRED", {
        error: JSON.stringify({ name: "PendingVersionExpiredError", message: `no deployment of this environment contained task ${run.task_id} before the run expired` }),
      });
    }
  });
}

async function sweepBuilds(engine: Engine): Promise<void> {
  const cutoff = new Date(Date.now() - engine.config.deploymentHeartbeatTimeoutMs);
  await engine.db("deployments")
    .whereIn("status", ["PENDING", "BUILDING"])
    .where("heartbeat_at", "<=", cutoff)
    .update({ status: "TIMED_OUT", failure_reason: `no heartbeat for ${Math.round(engine.config.deploymentHeartbeatTimeoutMs / 1000)}s` });
}
