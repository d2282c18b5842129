import { randomBytes } from "node:crypto";

/** Prefixed random ids: `run_…`, `wp_…`, `evt_…`, `runner_…`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString("hex")}`;
}
