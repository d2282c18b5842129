import { randomFillSync } from "node:crypto";

const ID_BYTES = 12;
/** Random bytes drawn 4 KiB at a time: one call into OpenSSL per 341 ids instead of one per id (a trigger's hot path). */
const pool = Buffer.alloc(ID_BYTES * 341);
let offset = pool.length;

/** Prefixed random ids: `run_…`, `wp_…`, `evt_…`, `runner_…`. */
export function newId(prefix: string): string {
  if (offset + ID_BYTES > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString("hex", offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return `${prefix}_${id}`;
}
