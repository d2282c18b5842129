import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Knex } from "knex";
import pg from "pg";
import type { Logger } from "pino";
import { connectionStringOf } from "../db/connect.ts";
import { parseRunChanges, RUN_CHANGE_EVENT, RUN_CHANGES_CHANNEL, RUN_CHANGES_PER_NOTIFY, runChangesPayload, type RunChange } from "./run-changes.ts";

/**
 * One channel for every wake-up; the payload says who should look: runners' polls or the scheduler.
 * "resumes" comes beside a "runs" wake when a suspended run was queued to resume: a poll it wakes
 * claims through the full claim at once (claim.ts), not first through the one-statement claim, which
 * cannot take a resume. (A server that does not know the topic still wakes on the "runs" beside it.)
 */
export const WAKE_CHANNEL = "stasis_wake";
export type WakeTopic = "runs" | "resumes" | "scheduler" | "logs";

/** This process's mark on the NOTIFYs it sends: its own listeners already heard them (locally) and skip the echo. */
const ORIGIN = randomUUID().slice(0, 8);

/** Listeners of this process, by the database they listen on: they hear this process's wakes without a round trip. */
const localListeners = new Map<string, Set<LocalWaker>>();

interface LocalWaker {
  /** Emits on the listener's events at once (`due`: the earliest deadline the wake is about, if any). */
  emit(topic: WakeTopic, due: number | undefined): void;
  /** Queues a NOTIFY for other replicas; sent coalesced on the listener's own connection. */
  tellOthers(topic: WakeTopic, due: number | undefined): void;
  /** Emits run changes on the listener's events at once and queues them for other replicas. */
  runChanges(changes: RunChange[]): void;
}

const databaseKeys = new WeakMap<object, string>();

/** host:port/database of `db`'s connection (cached per knex config: asked on every trigger and end). */
export function databaseKey(db: Knex | Knex.Transaction): string {
  const config = (db as Knex).client.config as object;
  let key = databaseKeys.get(config);
  if (key === undefined) {
    const c = connectionStringOf(db as Knex);
    if (typeof c === "string") {
      const url = new URL(c);
      key = `${url.hostname}:${url.port || 5432}/${url.pathname.slice(1)}`;
    } else {
      key = `${c.host ?? "localhost"}:${c.port ?? 5432}/${c.database ?? ""}`;
    }
    databaseKeys.set(config, key);
  }
  return key;
}

/** Runs `fn` once the caller's transaction commits (`onRollback` if it rolls back); at once outside one. */
export function afterCommit(db: Knex | Knex.Transaction, fn: () => void, onRollback: () => void = () => {}): void {
  const trx = db as Partial<Knex.Transaction>;
  if (trx.isTransaction && trx.executionPromise) trx.executionPromise.then(fn, onRollback);
  else fn();
}

function wake(db: Knex | Knex.Transaction, topic: WakeTopic, due: number | undefined): boolean {
  const listeners = localListeners.get(databaseKey(db));
  if (!listeners || listeners.size === 0) return false;
  for (const l of listeners) l.emit(topic, due);
  // One of them tells the other replicas.
  listeners.values().next().value!.tellOthers(topic, due);
  return true;
}

/**
 * Wakes whoever looks at `topic` once the caller's transaction commits (at once outside one).
 * This process's listeners are woken directly — no NOTIFY round trip before a long poll claims —
 * and other replicas hear one NOTIFY per topic per few milliseconds, sent after the commit on the
 * listener's own connection, instead of one NOTIFY per row: PostgreSQL serializes committing
 * transactions that sent a NOTIFY (a global lock on the notification queue), which capped triggers
 * per second. A process that dies between its commit and that NOTIFY leaves other replicas to find
 * the change at their next timeout (long polls 10 s, the scheduler at most schedulerMaxSleepMs).
 * `due` (epoch ms) is the deadline the change is about, when there is one: the scheduler ignores
 * a wake about a deadline later than the one it already sleeps until.
 * Without a listener of this process on that database, a plain NOTIFY is sent in the transaction.
 */
export async function notify(db: Knex | Knex.Transaction, topic: WakeTopic, due?: Date | number | null): Promise<void> {
  const dueMs = due === null || due === undefined ? undefined : typeof due === "number" ? due : due.getTime();
  if (!localListeners.get(databaseKey(db))?.size) {
    await db.raw("SELECT pg_notify(?, ?)", [WAKE_CHANNEL, payloadOf(topic, dueMs)]);
    return;
  }
  afterCommit(db, () => void wake(db, topic, dueMs));
}

/** A run was queued to resume from its checkpoint: its "runs" wake says so ("resumes" first; see WakeTopic). */
export async function notifyResumeQueued(db: Knex | Knex.Transaction): Promise<void> {
  await notify(db, "resumes");
  await notify(db, "runs");
}

/**
 * Tells live dashboards about run changes once the caller's transaction commits: this process's
 * listeners at once, other replicas through NOTIFYs coalesced like the wakes (many changes per
 * NOTIFY, not one per row). Without a listener of this process, NOTIFYs in the transaction.
 */
export async function notifyRunChanges(db: Knex | Knex.Transaction, changes: RunChange[]): Promise<void> {
  if (changes.length === 0) return;
  const listeners = localListeners.get(databaseKey(db));
  if (!listeners?.size) {
    for (let i = 0; i < changes.length; i += RUN_CHANGES_PER_NOTIFY) {
      await db.raw("SELECT pg_notify(?, ?)", [RUN_CHANGES_CHANNEL, runChangesPayload(ORIGIN, changes.slice(i, i + RUN_CHANGES_PER_NOTIFY))]);
    }
    return;
  }
  afterCommit(db, () => {
    const current = localListeners.get(databaseKey(db));
    if (current?.size) current.values().next().value!.runChanges(changes);
  });
}

/** `topic|origin|due`; a bare `topic` (older servers) is understood too. */
function payloadOf(topic: WakeTopic, due: number | undefined): string {
  return `${topic}|${ORIGIN}|${due ?? ""}`;
}

function parsePayload(payload: string | undefined): { topic: WakeTopic; origin: string | null; due: number | undefined } {
  const [topic, origin, due] = (payload || "runs").split("|");
  return { topic: topic as WakeTopic, origin: origin ?? null, due: due ? Number(due) : undefined };
}

export interface Listener {
  events: EventEmitter;
  /**
   * Resolves on the next wake of `topic`, or after `ms`. With `onlyBefore` (epoch ms), a wake about
   * a deadline at or after it is slept through (wakes without a deadline always count).
   */
  waitFor(topic: WakeTopic, ms: number, signal?: AbortSignal, onlyBefore?: number): Promise<void>;
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
      if (message.channel === WAKE_CHANNEL) {
        const { topic, origin, due } = parsePayload(message.payload);
        if (origin !== ORIGIN) events.emit(topic, due);
      } else if (message.channel === RUN_CHANGES_CHANNEL) {
        const { origin, changes } = parseRunChanges(message.payload);
        if (origin !== ORIGIN) for (const change of changes) events.emit(RUN_CHANGE_EVENT, change);
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

  // Wakes for other replicas, coalesced: per topic, the earliest deadline (or "none": always wake).
  const outgoing = new Map<WakeTopic, number | undefined>();
  let flushTimer: NodeJS.Timeout | null = null;
  const outgoingChanges: RunChange[] = [];
  // One NOTIFY query at a time on the listener's connection (pg queues overlapping ones, and will refuse them): what
  // comes meanwhile is sent, coalesced, once the current one is answered.
  let inFlight = false;
  const flush = () => {
    flushTimer = null;
    if (inFlight) return;
    const notices: Array<[string, string]> = [...outgoing].map(([topic, due]) => [WAKE_CHANNEL, payloadOf(topic, due)]);
    for (let i = 0; i < outgoingChanges.length; i += RUN_CHANGES_PER_NOTIFY) {
      notices.push([RUN_CHANGES_CHANNEL, runChangesPayload(ORIGIN, outgoingChanges.slice(i, i + RUN_CHANGES_PER_NOTIFY))]);
    }
    outgoing.clear();
    outgoingChanges.length = 0;
    if (!client || notices.length === 0) return; // reconnecting: the others catch up on their own timeouts
    const sql = `SELECT ${notices.map((_, i) => `pg_notify($${2 * i + 1}, $${2 * i + 2})`).join(", ")}`;
    inFlight = true;
    client
      .query(sql, notices.flat())
      .catch((error: Error) => logger.warn({ err: error }, "could not notify other replicas"))
      .finally(() => {
        inFlight = false;
        if (!closed && (outgoing.size > 0 || outgoingChanges.length > 0)) flushTimer ??= setTimeout(flush, 2);
      });
  };

  const waker: LocalWaker = {
    emit: (topic, due) => void events.emit(topic, due),
    tellOthers(topic, due) {
      if (closed) return;
      const before = outgoing.get(topic);
      outgoing.set(topic, !outgoing.has(topic) ? due : before === undefined || due === undefined ? undefined : Math.min(before, due));
      flushTimer ??= setTimeout(flush, 2);
    },
    runChanges(changes) {
      for (const change of changes) events.emit(RUN_CHANGE_EVENT, change);
      if (closed) return;
      outgoingChanges.push(...changes);
      flushTimer ??= setTimeout(flush, 2);
    },
  };
  const key = databaseKey(db);
  if (!localListeners.has(key)) localListeners.set(key, new Set());
  localListeners.get(key)!.add(waker);

  const waitFor = (topic: WakeTopic, ms: number, signal?: AbortSignal, onlyBefore?: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        events.off(topic, onWake);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const onWake = (due?: number) => {
        if (onlyBefore !== undefined && due !== undefined && due >= onlyBefore) return;
        done();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      events.on(topic, onWake);
      signal?.addEventListener("abort", done, { once: true });
    });

  return {
    events,
    waitFor,
    async close() {
      closed = true;
      localListeners.get(key)?.delete(waker);
      if (flushTimer) clearTimeout(flushTimer);
      flush();
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      wakeAll();
      const current = client;
      client = null;
      await current?.end().catch(() => {});
    },
  };
}
