import type { Knex } from "knex";
import { DecryptError, unwrapDataKey } from "./crypto.ts";
import type { Keyring } from "./keyring.ts";

/** The server cannot read the encrypted rows with the keys it was given. */
export class EncryptionKeyError extends Error {
  override name = "EncryptionKeyError";
  constructor(
    readonly code: "ENCRYPTION_KEY_MISSING" | "ENCRYPTION_KEY_WRONG",
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/**
 * Run at start: refuse to serve when encrypted rows exist and the key is missing, or when a master
 * key that wrapped some data key is not among the ones given. The id recorded with each wrapped key
 * is a key check value (an HMAC under the key), and one unwrap per master key confirms it with GCM's
 * authentication — a wrong key is named here, not discovered by the first run that needs a secret.
 */
export async function checkEncryptionKeys(db: Knex, keyring: Keyring | null): Promise<void> {
  const groups = (await db("project_data_keys").select("master_key_id").count<Array<{ master_key_id: string; count: string }>>("* as count").groupBy("master_key_id")) ?? [];
  if (groups.length === 0) return;
  const total = groups.reduce((sum, g) => sum + Number(g.count), 0);
  if (!keyring) {
    throw new EncryptionKeyError(
      "ENCRYPTION_KEY_MISSING",
      `STASIS_ENCRYPTION_KEY is not set, but ${total} project data key(s) in this database are encrypted with master key ${groups.map((g) => g.master_key_id).join(", ")}: ` +
        `start the server with the key they were written with (rule: encrypted rows exist → the master key is required)`,
    );
  }
  const given = [keyring.current.id, ...(keyring.previous ? [keyring.previous.id] : [])];
  for (const group of groups) {
    const master = keyring.byId(group.master_key_id);
    if (!master) {
      throw new EncryptionKeyError(
        "ENCRYPTION_KEY_WRONG",
        `${group.count} project data key(s) are wrapped by master key ${group.master_key_id}, but the key(s) given have id ${given.join(" and ")}: ` +
          `STASIS_ENCRYPTION_KEY is wrong (rule: every wrapped data key's master key id must match STASIS_ENCRYPTION_KEY or, while rotating, STASIS_ENCRYPTION_KEY_PREVIOUS)`,
      );
    }
    const sample = await db("project_data_keys").where({ master_key_id: group.master_key_id }).first("project_id", "wrapped_key");
    try {
      unwrapDataKey(master, sample.project_id, sample.wrapped_key);
    } catch (error) {
      if (!(error instanceof DecryptError)) throw error;
      throw new EncryptionKeyError("ENCRYPTION_KEY_WRONG", `master key ${master.id} cannot unwrap a data key it is recorded to have wrapped: ${error.message}`, { cause: error });
    }
  }
}
