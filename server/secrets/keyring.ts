import { parseMasterKey, type MasterKey } from "./crypto.ts";

/**
 * The master keys this server holds: `current` wraps new data keys; `previous` (during a rotation)
 * can still unwrap what the old key wrapped. Each wrapped data key records the id of its master key.
 */
export interface Keyring {
  current: MasterKey;
  previous: MasterKey | null;
  byId(id: string): MasterKey | null;
}

export function createKeyring(current: MasterKey, previous: MasterKey | null = null): Keyring {
  const keys = new Map([[current.id, current], ...(previous ? ([[previous.id, previous]] as const) : [])]);
  return { current, previous, byId: (id) => keys.get(id) ?? null };
}

/** `STASIS_ENCRYPTION_KEY` (and `STASIS_ENCRYPTION_KEY_PREVIOUS` while rotating); null when unset. */
export function keyringFromEnv(env: NodeJS.ProcessEnv = process.env): Keyring | null {
  const current = env.STASIS_ENCRYPTION_KEY?.trim();
  const previous = env.STASIS_ENCRYPTION_KEY_PREVIOUS?.trim();
  if (!current) {
    if (previous) throw new Error("STASIS_ENCRYPTION_KEY_PREVIOUS is set but STASIS_ENCRYPTION_KEY is not: during a rotation the new key goes in STASIS_ENCRYPTION_KEY");
    return null;
  }
  return createKeyring(parseMasterKey(current, "STASIS_ENCRYPTION_KEY"), previous ? parseMasterKey(previous, "STASIS_ENCRYPTION_KEY_PREVIOUS") : null);
}
