import type { Knex } from "knex";
import type { ClaimedRun } from "../../schemas/index.ts";
import { queuedRunCandidate } from "../sql/claim-runs.ts";
import { startClaims } from "./claim.ts";
import type { Engine } from "./context.ts";
import { afterCommit, databaseKey } from "./notify.ts";

/*
 * A resume handed to the runner that holds its dump, in the transaction that queues it. The usual way,
 * the event's transaction queues the resume and wakes the long polls, and the holder's poll then claims
 * it in a transaction of its own: a lock scan, a commit and a wake between the event and the restore
 * (about half of the 20–30 ms from the event's call to the runner holding its claim: bench/suspend-resume,
 * sixteenth round). When the holder's long poll is asleep in this server process with a free slot, the
 * transaction that holds the run's lock claims it for that poll right away, and the poll answers with it
 * once that transaction commits.
 *
 * A poll promises a slot only while it sleeps: its own claims run between sleeps, with the slots left
 * after any push, so a runner never gets more runs than it said it had room for. A push is a claim like
 * any other (a lease in the name of the poll's claim key): an answer that never reaches the runner is
 * returned by its next poll, or when the lease runs out.
 */

interface SleepingPoll {
  engine: Engine;
  claimKey: string | undefined;
  /** Slots not promised to a push yet. */
  free: number;
  open: boolean;
  /** Ends of the transactions that promised it a slot. */
  inFlight: Promise<void>[];
  pushed: ClaimedRun[];
  onPushed: () => void;
}

/** Long polls asleep in this process, by database and runner. */
const asleep = new Map<string, Set<SleepingPoll>>();
const keyOf = (db: Knex | Knex.Transaction, runnerId: string) => `${databaseKey(db)}|${runnerId}`;

export interface PollAsleep {
  /** Resolves when a push into this poll committed. */
  pushed: Promise<void>;
  /** Takes no more pushes; answers the runs pushed, once every push begun has committed or rolled back. */
  wake(): Promise<ClaimedRun[]>;
}

/** A long poll of `runnerId` going to sleep with `freeSlots`: resumes it holds the dumps of may be pushed into it until `wake`. */
export function sleepForPushes(engine: Engine, runnerId: string, freeSlots: number, claimKey: string | undefined): PollAsleep {
  const key = keyOf(engine.db, runnerId);
  let onPushed!: () => void;
  const pushed = new Promise<void>((resolve) => (onPushed = resolve));
  const poll: SleepingPoll = { engine, claimKey, free: freeSlots, open: true, inFlight: [], pushed: [], onPushed };
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
  /** Claims `runId` (locked by this transaction, QUEUED) for the poll: false when the claim left it queued (a key that does not unwrap). */
  claim(trx: Knex.Transaction, runId: string): Promise<boolean>;
}

/**
 * A slot of the long poll of `holderId` asleep in this process, promised to a resume that
 * `trx` queues; null when no such poll has one free. The poll answers with what `claim` took
 * when the transaction commits; a rollback gives the slot back.
 */
export function pushToHolder(trx: Knex.Transaction, holderId: string): ResumePush | null {
  const poll = [...(asleep.get(keyOf(trx, holderId)) ?? [])].find((p) => p.open && p.free > 0);
  if (!poll) return null;
  poll.free -= 1;
  let settle!: () => void;
  poll.inFlight.push(new Promise<void>((resolve) => (settle = resolve)));
  let claimed: ClaimedRun[] = [];
  const end = (handed: ClaimedRun[]) => {
    if (handed.length === 0) poll.free += 1;
    poll.pushed.push(...handed);
    settle();
    if (handed.length > 0) poll.onPushed();
  };
  afterCommit(trx, () => end(claimed), () => end([]));
  return {
    async claim(trx, runId) {
      const candidate = await queuedRunCandidate(trx, runId);
      claimed = candidate ? await startClaims(poll.engine, trx, holderId, [candidate], poll.claimKey) : [];
      return claimed.length > 0;
    },
  };
}
