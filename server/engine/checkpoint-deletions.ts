import type { Knex } from "knex";
import type { RunRow } from "./rows.ts";
import { onRunFinal } from "./transition.ts";

/**
 * The checkpoint at `location` is of no use any more: it goes on the `checkpoints_to_delete` list that
 * runner polls hand out (`deleteCheckpoints`), so a runner with access to the store deletes it.
 */
export async function queueCheckpointDeletion(trx: Knex.Transaction, runId: string, location: string): Promise<void> {
  await trx("checkpoints_to_delete").insert({ location, run_id: runId });
}

// A run that ends while it still names a checkpoint (canceled while suspended, timed out, failed by
// recovery, expired) will never be restored from it: delete it, in the transaction that ended the
// run. Runs that end through their runner's report clear the column, and that runner deletes the
// checkpoint it resumed from once the server acknowledged the end.
onRunFinal(async (trx, run: RunRow) => {
  if (!run.checkpoint_location) return;
  await queueCheckpointDeletion(trx, run.id, run.checkpoint_location);
  await trx("runs").where({ id: run.id }).update({ checkpoint_location: null, checkpoint_sha256: null, checkpoint_key: null });
});
