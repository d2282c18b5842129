import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";

export interface DeliveryLog {
  /**
   * True when the caller should handle this `X-GitHub-Delivery` id: never seen, or seen before but
   * its handling failed. False while it is being handled or once it was handled successfully.
   */
  claim(deliveryId: string): boolean;
  /** Handling succeeded: recorded for good (a later redelivery is ignored, across restarts too). */
  handled(deliveryId: string): Promise<void>;
  /** Handling failed: released, so GitHub's redelivery is handled again. */
  failed(deliveryId: string): void;
}

/**
 * Delivery ids handled successfully, one per line in an append-only file (survives restarts), plus
 * the ids being handled in memory. `claim` is synchronous, so two concurrent redeliveries cannot
 * both claim; an id is written to the file only once its handling succeeded.
 */
export async function createDeliveryLog(file: string): Promise<DeliveryLog> {
  await mkdir(dirname(file), { recursive: true });
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? "" : Promise.reject(error)));
  const done = new Set(text.split("\n").filter(Boolean));
  const handling = new Set<string>();
  return {
    claim(deliveryId) {
      if (done.has(deliveryId) || handling.has(deliveryId)) return false;
      handling.add(deliveryId);
      return true;
    },
    async handled(deliveryId) {
      done.add(deliveryId);
      handling.delete(deliveryId);
      await appendFile(file, `${deliveryId}\n`);
    },
    failed(deliveryId) {
      handling.delete(deliveryId);
    },
  };
}
