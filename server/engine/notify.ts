import { EventEmitter } from "node:events";
import type { Knex } from "knex";
import pg from "pg";
import type { Logger } from "pino";
import { connectionStringOf } from "../db/connect.ts";
import { parseRunChange, RUN_CHANGE_EVENT, RUN_CHANGES_CHANNEL } from "./run-changes.ts";

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

export interface ListenerOptions {
  /** First delay before reconnecting a lost LISTEN connection; it doubles up to `retryMaxMs`. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * LISTEN on a dedicated connection, so every server replica hears changes made by any other.
 * A lost connection (a PostgreSQL restart, a network cut) is reconnected with capped exponential
 * backoff and jitter for as long as the listener is open — not once: PostgreSQL may be down for
 * minutes. After each reconnect every topic is woken once (a catch-up pass: the scheduler sweeps,
 * long polls claim), since NOTIFYs sent while we were away are gone. Meanwhile waiters fall back to
 * their timeouts, so nothing is lost, only later.
 */
export async function createListener(db: Knex, logger: Logger, options: ListenerOptions = {}): Promise<Listener> {
  const retryMinMs = options.retryMinMs ?? 100;
  const retryMaxMs = options.retryMaxMs ?? 5000;
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let client: pg.Client | null = null;
  let closed = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | null = null;

  const wakeAll = () => {
    events.emit("runs");
    events.emit("scheduler");
    events.emit("logs");
    // Live dashboards re-read what they show: changes sent while we were away are gone.
    events.emit(RUN_CHANGE_EVENT, null);
  };

  const open = async (): Promise<void> => {
    const connection = connectionStringOf(db);
    // Knex's config object keeps its password non-enumerable: hand it over as it is, never spread.
    const next = new pg.Client(typeof connection === "string" ? { connectionString: connection, keepAlive: true } : connection);
    next.on("notification", (message) => {
      if (message.channel === WAKE_CHANNEL) events.emit(message.payload ?? "runs");
      else if (message.channel === RUN_CHANGES_CHANNEL) {
        const change = parseRunChange(message.payload);
        if (change) events.emit(RUN_CHANGE_EVENT, change);
      }
    });
    // Errors and ends of a client that is not (or no longer) the current one are ignored.
    next.on("error", (error) => lost(next, error));
    next.on("end", () => lost(next, new Error("LISTEN connection ended")));
    try {
      await next.connect();
      await next.query(`LISTEN ${WAKE_CHANNEL}`);
      await next.query(`LISTEN ${RUN_CHANGES_CHANNEL}`);
    } catch (error) {
      await next.end().catch(() => {});
      throw error;
    }
    if (closed) return void (await next.end().catch(() => {}));
    client = next;
  };

  const lost = (which: pg.Client, error: Error): void => {
    if (which !== client) return;
    client = null;
    which.end().catch(() => {});
    if (closed) return;
    logger.warn({ err: error }, "LISTEN connection lost; reconnecting");
    scheduleReconnect();
  };

  const scheduleReconnect = (): void => {
    if (closed || retryTimer) return;
    const ceiling = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(failures, 20));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      open().then(
        () => {
          if (closed) return;
          logger.info({ failedTries: failures }, "LISTEN connection re-established");
          failures = 0;
          // Whatever happened while we were disconnected: look again.
          wakeAll();
        },
        (error: unknown) => {
          failures++;
          // Every try while PostgreSQL is down fails; say so now and then, not on every try.
          if (failures === 1 || failures % 10 === 0) logger.warn({ err: error, failedTries: failures }, "LISTEN reconnect failed; still trying");
          scheduleReconnect();
        },
      );
    }, delay);
    retryTimer.unref();
  };

  await open();

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
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      wakeAll();
      const current = client;
      client = null;
      await current?.end().catch(() => {});
    },
  };
}
