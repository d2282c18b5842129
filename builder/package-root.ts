import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The stasis package this builder belongs to: bundles embed the SDK found here, so SDK and builder match. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SDK_INDEX = join(PACKAGE_ROOT, "sdk", "index.ts");
export const SDK_WORKER = join(PACKAGE_ROOT, "sdk", "worker.ts");

export function sdkVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
}
