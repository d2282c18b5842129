import { createHash } from "node:crypto";

/** Tells sets of variables apart without keeping them in a map key. */
export function envDigest(env: Record<string, string>): string {
  return createHash("sha256").update(JSON.stringify(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1)))).digest("hex");
}
