import type { Knex } from "knex";
import { StasisError } from "../errors.ts";
import { unwrapCheckpointKey, wrapCheckpointKey, KEY_BYTES } from "./crypto.ts";
import { dataKeyFor, unwrapDataKeyRow, type DataKeyRow } from "./data-keys.ts";
import type { Keyring } from "./keyring.ts";

/*
 * A checkpoint holds a process's whole memory: every secret its task read. The runner seals each one
 * with a fresh random key (AES-256-GCM, runner/checkpoint-store/sealed-stream.ts) and reports that key
 * with the sha256 of the stored bytes in its suspend. The server keeps the key only wrapped by the
 * project's data key, bound to the run and location, and hands it out again only in the claim of
 * that run's resume, over the runner API.
 */

export interface ReportedSeal {
  location: string;
  sha256: string;
  /** base64 */
  key: string;
}

async function projectOf(trx: Knex | Knex.Transaction, environmentId: string): Promise<string> {
  const row = await trx("environments").where({ id: environmentId }).first("project_id");
  return row.project_id as string;
}

/** The columns a suspend writes next to `checkpoint_location`. */
export async function sealColumnsFor(trx: Knex.Transaction, keyring: Keyring | null | undefined, run: { id: string; environment_id: string }, seal: ReportedSeal): Promise<{ checkpoint_sha256: string; checkpoint_key: Buffer }> {
  if (!keyring) {
    // 422, not 409: the runner reads a 409 on suspend as "the wait is over, resume here".
    throw new StasisError("ENCRYPTION_KEY_MISSING", 422, "the server has no STASIS_ENCRYPTION_KEY, so it cannot keep a checkpoint's key: start it with one to suspend runs");
  }
  const key = Buffer.from(seal.key, "base64");
  if (key.length !== KEY_BYTES) throw new StasisError("BAD_REQUEST", 400, `a checkpoint key is ${KEY_BYTES} bytes`, { field: "checkpoint.key" });
  const projectId = await projectOf(trx, run.environment_id);
  const dataKey = (await dataKeyFor(trx, keyring, projectId, { create: true }))!;
  return { checkpoint_sha256: seal.sha256, checkpoint_key: wrapCheckpointKey(dataKey, { projectId, runId: run.id, location: seal.location }, key) };
}

/**
 * The sha256 and the unwrapped key a resume claim carries, for the run's recorded checkpoint at
 * `location`, with the project's data key row its claim read beside it (claim-runs.ts). Nulls for a
 * checkpoint recorded before seals were (the runner then refuses it).
 */
export function sealForResume(
  keyring: Keyring | null | undefined,
  run: { id: string; project_id: string; checkpoint_location: string | null; checkpoint_sha256: string | null; checkpoint_key: Buffer | null },
  location: string,
  dataKeyRow: DataKeyRow | null,
): { sha256: string | null; key: string | null } {
  if (run.checkpoint_location !== location || !run.checkpoint_sha256 || !run.checkpoint_key) return { sha256: null, key: null };
  const projectId = run.project_id;
  if (!dataKeyRow) throw new StasisError("ENCRYPTION_KEY_UNKNOWN", 500, `project ${projectId} has no data key to unwrap the key of checkpoint ${location}`);
  const key = unwrapCheckpointKey(unwrapDataKeyRow(keyring, projectId, dataKeyRow), { projectId, runId: run.id, location }, run.checkpoint_key);
  return { sha256: run.checkpoint_sha256, key: key.toString("base64") };
}
