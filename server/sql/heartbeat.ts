import type { Knex } from "knex";
import { hotQuery } from "../db/prepared.ts";

/**
 * Extends every lease a runner still holds in one statement. The (id, lease_id) pairs come in as
 * one JSON array expanded with jsonb_to_recordset, so a runner with 100 runs costs one round trip
 * and one index lookup per run (primary key). A pair that matches nothing — the lease was taken
 * away (expired, canceled, completed elsewhere) — is reported back as lost. `r.id = ANY(ids)` tells
 * the planner how few rows it needs (it cannot see into jsonb_to_recordset and may otherwise
 * hash-join a sequential scan of every run).
 */
const HEARTBEAT_SQL = `
  UPDATE runs r
  SET lease_expires_at = now() + make_interval(secs => ? / 1000.0)
  FROM jsonb_to_recordset(?::jsonb) AS l(run_id text, lease_id text)
  WHERE r.id = ANY(?::text[])
    AND r.id = l.run_id
    AND r.lease_id = l.lease_id
    AND r.runner_id = ?
    AND r.status IN ('EXECUTING', 'WAITING')
  RETURNING r.id, r.lease_id
`;

export async function extendLeases(db: Knex, runnerId: string, leases: Array<{ runId: string; leaseId: string }>, leaseMs: number): Promise<string[]> {
  if (leases.length === 0) return [];
  const result = await hotQuery<{ id: string; lease_id: string }>(db, "stasis_heartbeat", HEARTBEAT_SQL, [leaseMs, JSON.stringify(leases.map((l) => ({ run_id: l.runId, lease_id: l.leaseId }))), leases.map((l) => l.runId), runnerId]);
  const kept = new Set(result.rows.map((r) => `${r.id}\n${r.lease_id}`));
  return leases.filter((l) => !kept.has(`${l.runId}\n${l.leaseId}`)).map((l) => l.runId);
}
