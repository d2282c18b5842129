import type { Knex } from "knex";

/**
 * A server that starts gives every live lease one more lease period. While no server answered,
 * runners could neither heartbeat nor report, so a lease that ran out meanwhile says nothing about
 * its runner. Without this, a server that came back after more than a lease expired every lease at
 * its first sweep and re-ran finished runs whose runners were still retrying their end reports
 * (seen by bench/chaos). Runners retry reports for two lease periods past their lease
 * (runner/lease-clock.ts), so they reach a server that was down for up to that long. With several
 * replicas, a restarted replica delays the recovery of a truly dead runner's runs by one period.
 */
const EXTEND_LEASES_SQL = `
  UPDATE runs
  SET lease_expires_at = now() + make_interval(secs => ?)
  WHERE status IN ('EXECUTING', 'WAITING')
    AND lease_expires_at IS NOT NULL
    AND lease_expires_at < now() + make_interval(secs => ?)
`;

export async function extendLeasesAfterStart(db: Knex, leaseMs: number): Promise<number> {
  const seconds = leaseMs / 1000;
  return (await db.raw(EXTEND_LEASES_SQL, [seconds, seconds])).rowCount as number;
}
