import type { Knex } from "knex";

/**
 * Which workload runtime took a run's checkpoint (`process`, `runc`, `docker`: the suspending
 * runner's). A checkpoint resumes only on a runner of the same workload — a process-runtime runner
 * cannot restore a runc checkpoint, and the failed restore used to cost the run its attempt and its
 * checkpoint. NULL (checkpoints taken before this column) resumes anywhere, as before.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`ALTER TABLE runs ADD COLUMN checkpoint_workload text;`);
}
