// Turns the ledger, the accepted events and the database's final rows into the chaos run's figures.
// Each ledger record is attributed to the server's attempt that was running when it arrived; a
// repeated step is "explained by a crash" when the runner of the attempt that recorded the earlier
// copy was kill -9'd by the injector before the last process under it was gone, after that record
// (the at-least-once window: code between the last checkpoint and a crash runs again, and a task runs
// on for as long as the parent-death signals take to reach it). Anything else repeated is a broken
// promise.
import type { FaultEvent } from "./faults.ts";
import type { LedgerRecord } from "./ledger-service.ts";
import type { KilledRunner } from "./stack.ts";
import type { AcceptedEvent, TriggeredRun } from "./workload.ts";

export const FINAL = ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "EXPIRED"];

export interface RunRow {
  id: string;
  task_id: string;
  status: string;
  output: { token?: string; eventId?: string | null } | null;
  error: { name?: string; message?: string } | null;
  attempt_count: number;
  parent_run_id: string | null;
  completed_at: Date | null;
}

export interface AttemptRow {
  run_id: string;
  number: number;
  status: string;
  runner_id: string | null;
  started_at: Date;
  ended_at: Date | null;
  error?: { name?: string; message?: string } | null;
}

export interface AnalyzeInput {
  triggered: TriggeredRun[];
  runs: RunRow[];
  attempts: AttemptRow[];
  records: LedgerRecord[];
  accepted: Map<string, AcceptedEvent>;
  killedRunners: Map<string, KilledRunner>;
  lastFaultHealedAt: number;
  /** Every injected fault, to say which window a repeat fell in. */
  faultEvents?: FaultEvent[];
}

/** Why one step ran again: the attempt that ran it first, how that attempt ended, and what ran it again. */
export interface RepeatTrace {
  runId: string;
  step: string;
  /** This copy's index (1: the second copy). */
  copy: number;
  explainedByKill: boolean;
  /** The attempt that recorded the earlier copy, and how it ended. */
  earlier: { attempt: number | null; ctxAttempt: number; status: string | null; error: string | null; runner: string | null; endedAt: string | null; at: string };
  /** The attempt that recorded this copy. */
  later: { attempt: number | null; ctxAttempt: number; at: string };
  /** "restored": the same process lineage (restored from a checkpoint taken before the earlier copy); "fresh": a new process from the start. */
  lineage: "restored" | "fresh" | "unknown";
  /** Injected faults active between the earlier copy and the end of its attempt (+ one lease, 30 s). */
  faults: string[];
  /** A short classification for the figures. */
  cause: string;
}

export interface Repeats {
  total: number;
  /** The earlier copy's attempt died by an injected runner kill after recording it. */
  afterCrash: number;
  unexplained: number;
  unexplainedRuns: string[];
}

export interface ChaosFigures {
  runs: { triggered: number; total: number; children: number; byStatus: Record<string, number> };
  lost: { count: number; runs: Array<{ id: string; task: string; status: string; lastStep: string | null }> };
  failedByPlatform: { count: number; runs: Array<{ id: string; task: string; error: string }> };
  finishedTwice: { count: number; runs: Array<{ id: string; why: string }> };
  finishRepeatedAfterCrash: number;
  afterWaitRepeated: Repeats & { traces: RepeatTrace[] };
  beforeCheckpointRepeated: { total: number; runs: number };
  events: { accepted: number; delivered: number; dropped: number; notFinalAtDeadline: number; droppedRuns: string[]; droppedDetails: Array<{ runId: string; eventId: string; received: Array<string | null>; status: string; attemptsAfterAccept: string[] }>; neverMatched: number };
  attemptsHistogram: Record<string, number>;
  msFromLastFaultToAllFinal: number | null;
}

export function analyze(input: AnalyzeInput): ChaosFigures {
  const runsById = new Map(input.runs.map((r) => [r.id, r]));
  const attemptsByRun = new Map<string, AttemptRow[]>();
  for (const a of input.attempts) attemptsByRun.set(a.run_id, [...(attemptsByRun.get(a.run_id) ?? []), a]);
  for (const list of attemptsByRun.values()) list.sort((a, b) => a.number - b.number);
  const recordsByRun = new Map<string, LedgerRecord[]>();
  for (const r of input.records) recordsByRun.set(r.runId, [...(recordsByRun.get(r.runId) ?? []), r]);

  const attemptAt = (runId: string, at: number) => {
    let found: AttemptRow | undefined;
    for (const a of attemptsByRun.get(runId) ?? []) if (a.started_at.getTime() <= at + 50) found = a;
    return found;
  };
  const diedByInjectedKill = (record: LedgerRecord) => {
    const attempt = attemptAt(record.runId, record.at);
    if (!attempt?.runner_id) return false;
    const killed = input.killedRunners.get(attempt.runner_id);
    if (!killed) return false;
    // Code runs on until the crash reaches the task process, so a record up to then is in the window.
    const crashOver = killed.goneAt ?? killed.killedAt;
    return crashOver >= record.at - 50 && (attempt.ended_at === null || killed.killedAt <= attempt.ended_at.getTime() + 50);
  };

  const byStatus: Record<string, number> = {};
  const attemptsHistogram: Record<string, number> = {};
  for (const r of input.runs) {
    byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    attemptsHistogram[r.attempt_count] = (attemptsHistogram[r.attempt_count] ?? 0) + 1;
  }

  const lastStep = (runId: string) => recordsByRun.get(runId)?.at(-1)?.step ?? null;
  const lost = input.runs.filter((r) => !FINAL.includes(r.status)).map((r) => ({ id: r.id, task: r.task_id, status: r.status, lastStep: lastStep(r.id) }));
  for (const t of input.triggered) if (!runsById.has(t.runId)) lost.push({ id: t.runId, task: t.task, status: "MISSING", lastStep: lastStep(t.runId) });

  const failedByPlatform = input.runs
    .filter((r) => r.status === "FAILED" && r.error?.name !== "ChaosIntended")
    .map((r) => ({ id: r.id, task: r.task_id, error: `${r.error?.name ?? "?"}: ${r.error?.message ?? ""}`.slice(0, 200) }));

  const afterWait: Repeats = { total: 0, afterCrash: 0, unexplained: 0, unexplainedRuns: [] };
  const traces: RepeatTrace[] = [];
  const iso = (ms: number | undefined | null) => (ms ? new Date(ms).toISOString() : null);
  const traceRepeat = (runId: string, step: string, copy: number, earlier: LedgerRecord, later: LedgerRecord, explainedByKill: boolean): RepeatTrace => {
    const a = attemptAt(runId, earlier.at);
    const b = attemptAt(runId, later.at);
    const endedAt = a?.ended_at?.getTime() ?? null;
    const windowEnd = (endedAt ?? later.at) + 30_000;
    const faults = (input.faultEvents ?? [])
      .filter((f) => f.at <= windowEnd && f.healedAt + 30_000 >= earlier.at)
      .map((f) => `${f.name} ${f.target} ${iso(f.at)}–${iso(f.healedAt)}`);
    const error = a?.error ? `${a.error.name ?? "?"}: ${(a.error.message ?? "").slice(0, 160)}` : null;
    const lineage = earlier.process && later.process ? (earlier.process === later.process ? "restored" : "fresh") : "unknown";
    let cause: string;
    if (explainedByKill) cause = "runner killed after the earlier copy (at-least-once since the last checkpoint)";
    else if (a && b && a.number === b.number) cause = `both copies in attempt ${a.number} (${lineage})`;
    else if (a) cause = `attempt ${a.number} ended ${a.status}${a.error?.name ? ` ${a.error.name}` : ""}; attempt ${b?.number ?? "?"} ran it again (${lineage})${faults.length ? ` during ${faults.map((f) => f.split(" ")[0]).join(", ")}` : ""}`;
    else cause = "no attempt found for the earlier copy";
    return {
      runId,
      step,
      copy,
      explainedByKill,
      earlier: { attempt: a?.number ?? null, ctxAttempt: earlier.attempt, status: a?.status ?? null, error, runner: a?.runner_id ?? null, endedAt: iso(endedAt), at: iso(earlier.at)! },
      later: { attempt: b?.number ?? null, ctxAttempt: later.attempt, at: iso(later.at)! },
      lineage,
      faults,
      cause,
    };
  };
  const finishedTwice: Array<{ id: string; why: string }> = [];
  let finishRepeatedAfterCrash = 0;
  const beforeCheckpoint = { total: 0, runs: 0 };

  for (const [runId, records] of recordsByRun) {
    const steps = new Map<string, LedgerRecord[]>();
    for (const r of records) steps.set(r.step, [...(steps.get(r.step) ?? []), r]);
    // Before the first checkpoint: "begin" (once per intended failure, plus one) and "waiting-event".
    const throws = steps.get("throw")?.length ?? 0;
    const extraBegin = Math.max(0, (steps.get("begin")?.length ?? 0) - throws - 1) + Math.max(0, (steps.get("waiting-event")?.length ?? 0) - 1);
    if (extraBegin > 0) {
      beforeCheckpoint.total += extraBegin;
      beforeCheckpoint.runs++;
    }
    for (const [step, copies] of steps) {
      if (copies.length < 2 || !(step.startsWith("after-") || step === "end")) continue;
      let unexplained = 0;
      for (let k = 1; k < copies.length; k++) {
        const explained = diedByInjectedKill(copies[k - 1]);
        traces.push(traceRepeat(runId, step, k, copies[k - 1], copies[k], explained));
        if (step === "end") {
          if (explained) finishRepeatedAfterCrash++;
          else unexplained++;
        } else {
          afterWait.total++;
          if (explained) afterWait.afterCrash++;
          else unexplained++;
        }
      }
      if (unexplained === 0) continue;
      if (step === "end") finishedTwice.push({ id: runId, why: `final step recorded ${copies.length}× (attempts ${copies.map((c) => attemptAt(runId, c.at)?.number ?? "?").join(", ")}), not explained by an injected runner kill` });
      else {
        afterWait.unexplained += unexplained;
        afterWait.unexplainedRuns.push(`${runId} ${step}×${copies.length}`);
      }
    }
  }
  for (const r of input.runs) {
    if (r.status !== "COMPLETED" || !r.output?.token) continue;
    const ends = (recordsByRun.get(r.id) ?? []).filter((x) => x.step === "end");
    if (!ends.length) finishedTwice.push({ id: r.id, why: "COMPLETED with an output no final step recorded" });
    else if (ends.at(-1)!.value !== r.output.token && !finishedTwice.some((f) => f.id === r.id)) finishedTwice.push({ id: r.id, why: "COMPLETED with the output of an earlier execution than the last one recorded" });
  }

  const droppedRuns: string[] = [];
  const droppedDetails: ChaosFigures["events"]["droppedDetails"] = [];
  let delivered = 0;
  let notFinalAtDeadline = 0;
  for (const e of input.accepted.values()) {
    // A run still not final is counted as lost already; whether it would have got its event is unknown.
    if (!FINAL.includes(runsById.get(e.runId)?.status ?? "")) {
      notFinalAtDeadline++;
      continue;
    }
    const got = (recordsByRun.get(e.runId) ?? []).some((r) => r.step === "after-event" && (r.value as { eventId?: string } | null)?.eventId === e.eventId);
    const run = runsById.get(e.runId);
    const output = run?.status === "COMPLETED" ? run.output?.eventId : e.eventId;
    if (got && output === e.eventId) delivered++;
    else {
      droppedRuns.push(e.runId);
      droppedDetails.push({
        runId: e.runId,
        eventId: e.eventId,
        // What each execution past the wait saw (null: it timed out waiting).
        received: (recordsByRun.get(e.runId) ?? []).filter((r) => r.step === "after-event").map((r) => (r.value as { eventId?: string | null } | null)?.eventId ?? null),
        status: run?.status ?? "MISSING",
        attemptsAfterAccept: (attemptsByRun.get(e.runId) ?? []).filter((a) => (a.ended_at?.getTime() ?? Infinity) >= e.acceptedAt).map((a) => `${a.number} ${a.status}${a.runner_id && input.killedRunners.has(a.runner_id) ? " (runner killed)" : ""}`),
      });
    }
  }
  const eventRuns = input.triggered.filter((t) => t.kind === "event");
  const neverMatched = eventRuns.filter((t) => !input.accepted.has(t.runId)).length;

  const allFinal = lost.length === 0;
  const lastCompleted = Math.max(0, ...input.runs.map((r) => r.completed_at?.getTime() ?? 0));
  return {
    runs: { triggered: input.triggered.length, total: input.runs.length, children: input.runs.filter((r) => r.parent_run_id).length, byStatus },
    lost: { count: lost.length, runs: lost.slice(0, 50) },
    failedByPlatform: { count: failedByPlatform.length, runs: failedByPlatform.slice(0, 50) },
    finishedTwice: { count: finishedTwice.length, runs: finishedTwice.slice(0, 50) },
    finishRepeatedAfterCrash,
    afterWaitRepeated: { ...afterWait, unexplainedRuns: afterWait.unexplainedRuns.slice(0, 50), traces: traces.slice(0, 200) },
    beforeCheckpointRepeated: beforeCheckpoint,
    events: { accepted: input.accepted.size, delivered, dropped: droppedRuns.length, notFinalAtDeadline, droppedRuns: droppedRuns.slice(0, 50), droppedDetails: droppedDetails.slice(0, 50), neverMatched },
    attemptsHistogram,
    msFromLastFaultToAllFinal: allFinal && input.lastFaultHealedAt ? Math.max(0, lastCompleted - input.lastFaultHealedAt) : null,
  };
}
