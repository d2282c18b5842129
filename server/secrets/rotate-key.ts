import type { Knex } from "knex";
import { StasisError } from "../errors.ts";
import { unwrapDataKey, wrapDataKey } from "./crypto.ts";
import type { Keyring } from "./keyring.ts";

export interface RotateResult {
  masterKeyId: string;
  rewrapped: number;
  total: number;
}

/**
 * Re-wraps every project data key not yet under the current master key, in one transaction. Values
 * stay encrypted under their (unchanged) data keys, so nothing else is rewritten and runs, sets and
 * reads go on meanwhile: each row is locked only while it is re-wrapped, and a server holding both
 * keys reads rows on either side of the switch.
 */
export async function rotateMasterKey(db: Knex, keyring: Keyring | null | undefined): Promise<RotateResult> {
  if (!keyring) throw new StasisError("ENCRYPTION_KEY_MISSING", 409, "the server has no STASIS_ENCRYPTION_KEY: nothing to rotate to");
  return await db.transaction(async (trx) => {
    const rows = await trx("project_data_keys").whereNot({ master_key_id: keyring.current.id }).forUpdate().select("project_id", "master_key_id", "wrapped_key");
    for (const row of rows) {
      const master = keyring.byId(row.master_key_id);
      if (!master) {
        throw new StasisError(
          "ENCRYPTION_KEY_UNKNOWN",
          409,
          `the data key of project ${row.project_id} is wrapped by master key ${row.master_key_id}: give the server that key as STASIS_ENCRYPTION_KEY_PREVIOUS to rotate away from it`,
        );
      }
      const dataKey = unwrapDataKey(master, row.project_id, row.wrapped_key);
      await trx("project_data_keys")
        .where({ project_id: row.project_id, master_key_id: row.master_key_id })
        .update({ master_key_id: keyring.current.id, wrapped_key: wrapDataKey(keyring.current, row.project_id, dataKey), rotated_at: trx.fn.now() });
    }
    const [{ count }] = await trx("project_data_keys").count<Array<{ count: string }>>("* as count");
    return { masterKeyId: keyring.current.id, rewrapped: rows.length, total: Number(count) };
  });
}
