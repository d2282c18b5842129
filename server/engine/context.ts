import type { Knex } from "knex";
import type { Logger } from "pino";
import type { Keyring } from "../secrets/keyring.ts";
import type { Listener } from "./notify.ts";

export interface EngineConfig {
  /** How long a lease lasts without a heartbeat. */
  leaseMs: number;
  heartbeatIntervalMs: number;
  /** PENDING_VERSION runs expire after this long. */
  pendingVersionTtlMs: number;
  /** A BUILDING deployment without a heartbeat for this long is TIMED_OUT. */
  deploymentHeartbeatTimeoutMs: number;
  /** Longest the scheduler sleeps without being woken (a safety net, not the mechanism). */
  schedulerMaxSleepMs: number;
  publicUrl: string;
  /** Expired OAuth states and Connect links are deleted this long after their expiry (until then they answer "expired"). */
  connectRetentionMs: number;
  /** How often the scheduler's sweep deletes them (at most). */
  connectSweepIntervalMs: number;
  /** Handed to runners at registration when set. */
  suspendThresholdMs?: number;
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  leaseMs: 30_000,
  heartbeatIntervalMs: 10_000,
  pendingVersionTtlMs: 24 * 60 * 60 * 1000,
  deploymentHeartbeatTimeoutMs: 10 * 60 * 1000,
  schedulerMaxSleepMs: 30_000,
  publicUrl: "http://127.0.0.1:3030",
  connectRetentionMs: 24 * 60 * 60 * 1000,
  connectSweepIntervalMs: 60_000,
};

/** Where the schedules' sense of "now" comes from; tests inject a fake one (no sleeps). */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

export interface Engine {
  db: Knex;
  /** The clock of cron schedules (default: the system clock). */
  clock?: Clock;
  config: EngineConfig;
  listener: Listener;
  logger: Logger;
  /** Master keys for environment variables (null: none configured; variables are refused). */
  keyring?: Keyring | null;
  /** The log redactor of a run: its environment's current variables and those its process started with (server/secrets/run-redactor.ts). */
  redactorFor?: (run: { id: string; environmentId: string }) => Promise<{ text(value: string): string; deep<T>(value: T): T; readonly empty: boolean }>;
}
