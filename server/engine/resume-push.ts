import type { Knex } from "knex";
import type { ClaimedRun, ContinueRun, WaitResult } from "../../schemas/index.ts";
import { canTransition } from "../../schemas/index.ts";
import { StasisError } from "../errors.ts";
import { queueResumeCandidate } from "../sql/claim-runs.ts";
import { continueRun, startClaims } from "./claim.ts";
import type { Engine } from "./context.ts";
import { afterCommit, databaseKey, notifyRunChanges } from "./notify.ts";
import type { RunRow } from "./rows.ts";

/*
 * A resume handed to the runner that holds its dump, in the transaction that queues it. The usual way,
 * the event's transaction queues the resume and wakes the long polls, and the holder's poll then claims
 * it in a transaction of its own: a lock scan, a commit and a wake between the event and the restore
 * (about half of the 20–30 ms from the event's call to the runner holding its claim: bench/suspend-resume,
 * sixteenth round). When the holder's long poll is asleep in this server process with a free slot, the
 * transaction that holds the run's lock claims it for that poll right away, and the poll answers with it
 * once that transaction commits. When the holder's poll is not asleep here with a slot, a poll of a runner
 * keeping its dumps on the holder's work dir (its checkpoint site) takes it, restoring the same dump. A
 * resume held for no runner goes the same way to any poll asleep here whose runner can restore it
 * (bench/suspend-resume, twenty-second round).
 *
 * A run that waited with its process alive (WAITING) gets its `continue` the same way: the transaction
 * that completes its wait moves it back to EXECUTING and the sleeping poll of its runner answers with the
 * continue, instead of a wake, a look for pending work and a transaction of the poll's own.
 *
 * A poll promises a slot only while it sleeps: its own claims run between sleeps, with the slots left
 * after any push, so a runner never gets more runs than it said it had room for. A push is a claim like
 * any other (a lease in the name of the poll's claim key): an answer that never reaches the runner is
 * returned by its next poll, or when the lease runs out.
 */

interface SleepingPoll {
  engine: Engine;
  runnerId: string;
  claimKey: string | undefined;
  /** Slots not promised to a push yet. */
  free: number;
  open: boolean;
  /** Ends of the transactions that pushed into it. */
  inFlight: Promise<void>[];
  pushed: Pushed;
  onPushed: () => void;
}

export interface Pushed {
  runs: ClaimedRun[];
  continues: ContinueRun[];
}

/** Long polls asleep in this process, by database and runner. */
const asleep = new Map<string, Set<SleepingPoll>>();
const keyOf = (db: Knex | Knex.Transaction, runnerId: string) => `${databaseKey(db)}|${runnerId}`;

export interface PollAsleep {
  /** Resolves when a push into this poll committed. */
  pushed: Promise<void>;
  /** Takes no more pushes; answers what was pushed, once every push begun has committed or rolled back. */
  wake(): Promise<Pushed>;
}

/** A long poll of `runnerId` going to sleep with `freeSlots`: resumes it holds the dumps of may be pushed into it until `wake`. */
export function sleepForPushes(engine: Engine, runnerId: string, freeSlots: number, claimKey: string | undefined): PollAsleep {
  const key = keyOf(engine.db, runnerId);
  let onPushed!: () => void;
  const pushed = new Promise<void>((resolve) => (onPushed = resolve));
  const poll: SleepingPoll = { engine, runnerId, claimKey, free: freeSlots, open: true, inFlight: [], pushed: { runs: [], continues: [] }, onPushed };
  const polls = asleep.get(key) ?? new Set();
  asleep.set(key, polls.add(poll));
  return {
    pushed,
    async wake() {
      poll.open = false;
      polls.delete(poll);
      if (polls.size === 0 && asleep.get(key) === polls) asleep.delete(key);
      await Promise.all(poll.inFlight);
      return poll.pushed;
    },
  };
}

export interface ResumePush {
  /**
   * Queues `run` (locked by this transaction, SUSPENDED) to resume with `resume` (its JSON) and claims it for the poll, the
   * queueing and the claim's read in one statement: false when the claim left it queued (a key that does not unwrap).
   */
  queueAndClaim(trx: Knex.Transaction, run: RunRow, resume: string): Promise<boolean>;
}

/**
 * A slot of the long poll of `holderId` asleep in this process, promised to a resume that
 * `trx` queues; null when no such poll has one free. The poll answers with what `claim` took
 * when the transaction commits; a rollback gives the slot back.
 */
export function pushToHolder(trx: Knex.Transaction, holderId: string): ResumePush | null {
  const poll = sleepingPoll(trx, holderId, (p) => p.free > 0);
  return poll ? pushInto(trx, poll) : null;
}

/**
 * For a resume no runner is held for (none kept its dump, or the one that did is gone): a slot of any long poll
 * asleep in this process whose runner restores checkpoints of `workload` (the claim's own rule: a process runner
 * cannot restore a runc checkpoint; and it said it can restore at all), the one with the most free slots. A poll
 * asleep found nothing to claim when it last looked, so the resume passes no run that waited longer. null: none.
 */
export function pushToAnyPoll(trx: Knex.Transaction, workload: string | null): Promise<ResumePush | null> {
  return pushToRestorer(trx, workload);
}

/**
 * For a resume whose holder has no long poll asleep here with a free slot: a slot of a poll asleep here of a
 * runner that keeps its dumps where the holder does (its checkpoint site, runner/checkpoint-site.ts), which
 * takes the holder's dump by a rename and restores it as the holder would. null: none (the resume is held for
 * the holder; a runner of its site may claim it meanwhile, migration 019).
 */
export function pushToHolderSite(trx: Knex.Transaction, holderId: string, workload: string | null): Promise<ResumePush | null> {
  return pushToRestorer(trx, workload, holderId);
}

/**
 * A slot of the poll asleep here with the most free slots whose runner restores checkpoints of `workload` and,
 * with `siteOf`, keeps its dumps where that runner does (not that runner itself); null: none.
 */
async function pushToRestorer(trx: Knex.Transaction, workload: string | null, siteOf?: string): Promise<ResumePush | null> {
  const prefix = `${databaseKey(trx)}|`;
  const polls = [...asleep].flatMap(([key, set]) => (key.startsWith(prefix) ? [...set] : [])).filter((p) => p.open && p.free > 0 && p.runnerId !== siteOf);
  if (polls.length === 0) return null;
  const ids = new Set(polls.map((p) => p.runnerId));
  const runners = (await trx("runners")
    .whereIn("id", siteOf ? [...ids, siteOf] : [...ids])
    .select("id", "workload", "checkpoints", "checkpoint_site")) as Array<{ id: string; workload: string | null; checkpoints: boolean; checkpoint_site: string | null }>;
  const site = siteOf ? runners.find((r) => r.id === siteOf)?.checkpoint_site : undefined;
  if (siteOf && !site) return null;
  const restorers = new Set(
    runners.filter((r) => ids.has(r.id) && r.checkpoints && (workload === null || (r.workload ?? "process") === workload) && (!site || r.checkpoint_site === site)).map((r) => r.id),
  );
  // Asleep when looked at, maybe not once the runners were read: taken only if it still has a slot.
  const poll = polls.filter((p) => restorers.has(p.runnerId) && p.open && p.free > 0).sort((a, b) => b.free - a.free)[0];
  return poll ? pushInto(trx, poll) : null;
}

/** A slot of `poll` promised to the resume `trx` queues: the poll answers with it once `trx` commits; a rollback gives the slot back. */
function pushInto(trx: Knex.Transaction, poll: SleepingPoll): ResumePush {
  poll.free -= 1;
  let claimed: ClaimedRun[] = [];
  whenDone(trx, poll, (committed) => {
    if (committed && claimed.length > 0) poll.pushed.runs.push(...claimed);
    else poll.free += 1;
    return committed && claimed.length > 0;
  });
  return {
    async queueAndClaim(trx, run, resume) {
      if (!canTransition(run.status, "QUEUED")) throw new StasisError("INVALID_TRANSITION", 409, `run ${run.id} cannot go from ${run.status} to QUEUED`);
      const candidate = await queueResumeCandidate(trx, run.id, resume);
      if (!candidate) throw new StasisError("INVALID_TRANSITION", 409, `run ${run.id} was not SUSPENDED when its resume was queued`);
      await notifyRunChanges(trx, [{ env: candidate.environment_id, run: run.id, what: "QUEUED" }]);
      claimed = await startClaims(poll.engine, trx, poll.runnerId, [candidate], poll.claimKey);
      return claimed.length > 0;
    },
  };
}

/**
 * In the transaction that completes the wait of `run` (locked, WAITING: its process is alive): moves it back
 * to EXECUTING and hands the continue to its runner's long poll asleep in this process, when that
 * transaction commits. false: no such poll (the caller wakes the runners; the poll's look takes the continue).
 */
export async function pushContinue(trx: Knex.Transaction, run: RunRow, waitpointId: string, result: WaitResult): Promise<boolean> {
  const poll = run.runner_id ? sleepingPoll(trx, run.runner_id, () => true) : null;
  if (!poll) return false;
  let continued: ContinueRun | null = null;
  whenDone(trx, poll, (committed) => {
    if (committed && continued) poll.pushed.continues.push(continued);
    return committed && continued !== null;
  });
  continued = await continueRun(trx, run, waitpointId, result);
  return continued !== null;
}

function sleepingPoll(db: Knex.Transaction, runnerId: string, fits: (poll: SleepingPoll) => boolean): SleepingPoll | null {
  return [...(asleep.get(keyOf(db, runnerId)) ?? [])].find((p) => p.open && fits(p)) ?? null;
}

/** `end(committed)` once `trx` commits or rolls back; the poll waits for it before it answers, and answers at once when it says it handed something. */
function whenDone(trx: Knex.Transaction, poll: SleepingPoll, end: (committed: boolean) => boolean): void {
  let settle!: () => void;
  poll.inFlight.push(new Promise<void>((resolve) => (settle = resolve)));
  const done = (committed: boolean) => {
    const handed = end(committed);
    settle();
    if (handed) poll.onPushed();
  };
  afterCommit(trx, () => done(true), () => done(false));
}
