import type { Knex } from "knex";
import { notify } from "./notify.ts";
import type { RunRow } from "./rows.ts";

/**
 * How long a resume waits for the runner that took its checkpoint before any runner may claim it.
 * That runner keeps the dump on its own disk and restores it without fetching, unsealing and
 * unpacking the stored copy (runner/local-checkpoints.ts): a NOTIFY wakes its poll at once, so it
 * normally claims within milliseconds; the hold only matters when it has no free slot or is gone.
 */
export const RESUME_HOLD_MS = 1000;

/** A runner not seen (poll or heartbeat) for this long holds nothing: its resumes go to anyone at once. */
const HOLDER_SEEN_WITHIN_MS = 30_000;

/**
 * The columns that hold a resume being queued now for the runner that took `run`'s checkpoint, when
 * that runner is still around; else none (anyone claims it). The scheduler wakes the other runners'
 * polls when the hold ends (scheduler.ts), so a resume its holder cannot take waits no longer than that.
 */
export async function resumeHoldColumns(trx: Knex.Transaction, run: Pick<RunRow, "checkpoint_runner_id">): Promise<{ resume_runner_id: string | null; resume_held_until: Knex.Raw | null }> {
  const none = { resume_runner_id: null, resume_held_until: null };
  if (!run.checkpoint_runner_id) return none;
  const seen = await trx("runners")
    .where({ id: run.checkpoint_runner_id })
    .where("last_seen_at", ">", trx.raw("now() - make_interval(secs => ?)", [HOLDER_SEEN_WITHIN_MS / 1000]))
    .first("id");
  if (!seen) return none;
  // The scheduler sleeps until its next deadline: this is one, when the others' polls must be woken.
  await notify(trx, "scheduler", Date.now() + RESUME_HOLD_MS);
  return { resume_runner_id: run.checkpoint_runner_id, resume_held_until: trx.raw("now() + make_interval(secs => ?)", [RESUME_HOLD_MS / 1000]) };
}
