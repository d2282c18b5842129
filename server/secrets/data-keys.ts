import type { Knex } from "knex";
import { StasisError } from "../errors.ts";
import { generateKey, unwrapDataKey, wrapDataKey } from "./crypto.ts";
import type { Keyring } from "./keyring.ts";

export const encryptionNotConfigured = () =>
  new StasisError("ENCRYPTION_KEY_MISSING", 409, "environment variables need an encryption key: start the server with STASIS_ENCRYPTION_KEY (32 bytes, base64 or hex)");

/**
 * The project's data key, unwrapped; created (random, wrapped by the current master key) when the
 * project has none and `create` is set. Two first writers race on the primary key: the loser reads
 * the winner's key.
 */
export async function dataKeyFor(db: Knex | Knex.Transaction, keyring: Keyring | null | undefined, projectId: string, options: { create: boolean }): Promise<Buffer | null> {
  if (!keyring) throw encryptionNotConfigured();
  let row = await db("project_data_keys").where({ project_id: projectId }).first("master_key_id", "wrapped_key");
  if (!row && options.create) {
    const key = generateKey();
    await db("project_data_keys")
      .insert({ project_id: projectId, master_key_id: keyring.current.id, wrapped_key: wrapDataKey(keyring.current, projectId, key) })
      .onConflict("project_id")
      .ignore();
    row = await db("project_data_keys").where({ project_id: projectId }).first("master_key_id", "wrapped_key");
  }
  return row ? unwrapDataKeyRow(keyring, projectId, row) : null;
}

/** A project's `project_data_keys` row, as read beside something else (a resume's claim). */
export interface DataKeyRow {
  master_key_id: string;
  wrapped_key: Buffer;
}

/** The project's data key from its row, unwrapped by the master key that wrapped it. */
export function unwrapDataKeyRow(keyring: Keyring | null | undefined, projectId: string, row: DataKeyRow): Buffer {
  if (!keyring) throw encryptionNotConfigured();
  const master = keyring.byId(row.master_key_id);
  if (!master) {
    throw new StasisError("ENCRYPTION_KEY_UNKNOWN", 500, `the data key of project ${projectId} is wrapped by master key ${row.master_key_id}, which this server does not hold`);
  }
  return unwrapDataKey(master, projectId, row.wrapped_key);
}
