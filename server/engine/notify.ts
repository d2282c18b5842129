import { EventEmitter } from "node:events";
import type { Knex } from "knex";
import pg from "pg";
import type { Logger } from "pino";
import { connectionStringOf } from "../db/connect.ts";

/** One channel for every wake-up; the payload says who should look: runners' polls or the scheduler. */
export const WAKE_CHANNEL = "stasis_wake";
export type WakeTopic = "runs" | "scheduler" | "logs";

/** Sent inside the caller's transaction, so listeners only hear it once the change is committed. */
export async function notify(db: Knex | Knex.Transaction, topic: WakeTopic): Promise<void> {
  await db.raw("SELECT pg_notify(?, ?)", [WAKE_CHANNEL, topic]);
}

export interface Listener {
  events: EventEmitter;
  /** Resolves on the next wake of `topic`, or after `ms`. */
  waitFor(topic: WakeTopic, ms: number, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/**
 * LISTEN on a dedicated connection, so every server replica hears changes made by any other.
 * The connection is re-opened if it drops; missed wake-ups only cost a poll interval.
 */
export async function createListener(db: Knex, logger: Logger): Promise<Listener> {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let client: pg.Client | null = null;
  let closed = false;

  const connect = async (): Promise<void> => {
    const connection = connectionStringOf(db);
    const next = new pg.Client(typeof connection === "string" ? { connectionString: connection } : connection);
    next.on("notification", (message) => {
      if (message.channel === WAKE_CHANNEL) events.emit(message.payload ?? "runs");
    });
    next.on("error", (error) => {
      logger.warn({ err: error }, "LISTEN connection failed; reconnecting");
      next.end().catch(() => {});
      if (!closed) setTimeout(() => void connect().catch((e) => logger.error({ err: e }, "LISTEN reconnect failed")), 1000).unref();
    });
    await next.connect();
    await next.query(`LISTEN ${WAKE_CHANNEL}`);
    client = next;
    // Whatever happened while we were disconnected: look again.
    events.emit("runs");
    events.emit("scheduler");
  };
  await connect();

  const waitFor = (topic: WakeTopic, ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        events.off(topic, done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      events.once(topic, done);
      signal?.addEventListener("abort", done, { once: true });
    });

  return {
    events,
    waitFor,
    async close() {
      closed = true;
      events.emit("runs");
      events.emit("scheduler");
      await client?.end().catch(() => {});
    },
  };
}
