import { existsSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateKey, keyringFromEnv, parseMasterKey, createKeyring, type Keyring } from "../server/index.ts";

/**
 * The master key of a local stack (`stasis dev`, tests): STASIS_ENCRYPTION_KEY when set, else
 * `<stateDir>/encryption.key`, generated on first start with mode 0600 and reused afterwards (the
 * embedded database next to it holds data keys only that key unwraps).
 */
export async function localKeyring(stateDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Keyring> {
  const fromEnv = keyringFromEnv(env);
  if (fromEnv) return fromEnv;
  const file = join(stateDir, "encryption.key");
  if (!existsSync(file)) await writeFile(file, `${generateKey().toString("base64")}\n`, { mode: 0o600, flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
  await chmod(file, 0o600);
  return createKeyring(parseMasterKey(await readFile(file, "utf8"), file));
}
