import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";

export interface DeliveryLog {
  /** True the first time an `X-GitHub-Delivery` id is seen; false for a redelivery. */
  claim(deliveryId: string): Promise<boolean>;
}

/**
 * Delivery ids seen, one per line in an append-only file (survives restarts), plus a set in
 * memory. The set is updated synchronously, so two concurrent redeliveries cannot both claim.
 */
export async function createDeliveryLog(file: string): Promise<DeliveryLog> {
  await mkdir(dirname(file), { recursive: true });
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? "" : Promise.reject(error)));
  const seen = new Set(text.split("\n").filter(Boolean));
  return {
    async claim(deliveryId) {
      if (seen.has(deliveryId)) return false;
      seen.add(deliveryId);
      await appendFile(file, `${deliveryId}\n`);
      return true;
    },
  };
}
