import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The stasis package this builder belongs to: bundles embed the SDK found here, so SDK and builder
 * match. Computed on each call, not at load: the bundled Action points it elsewhere at run time.
 */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..");
}

export const sdkIndexPath = (): string => join(packageRoot(), "sdk", "index.ts");
export const sdkWorkerPath = (): string => join(packageRoot(), "sdk", "worker.ts");

export function sdkVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}
