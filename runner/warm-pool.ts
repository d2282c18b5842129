import { freemem } from "node:os";
import { readReady } from "./read-ready.ts";
import type { TaskProcess } from "./workload/index.ts";

export interface WarmPoolOptions {
  /** Deployments (keys) that keep spares; the least recently used one loses its spares first. Default 4. */
  maxDeployments?: number;
  /** The most spares one key may have, asked at each refill (e.g. the runner's free slots). Default 1. */
  sparesPerKey?: () => number;
  /** A spare ready and unused this long is stopped, unless it is its key's last one. Default 60 s. */
  idleMs?: number;
  /** Memory one idle spare is counted at when bounding the pool by the host's free memory. Default 64 MiB. */
  spareBytes?: number;
  /** Told each time a spare said `ready` (the runner logs it at debug level). */
  onReady?: (key: string) => void;
}

interface Spare {
  proc: Promise<TaskProcess>;
  /** Settles once the process said `ready` (the pool read it) or died first. */
  ready: Promise<boolean>;
  isReady: boolean;
  /** When it said `ready` (Date.now()). */
  readyAt: number;
  dead: boolean;
}

/** What `take` hands out: `ready` means the pool already read the process's `ready` message — send `execute` now. */
export interface TakenProcess {
  proc: TaskProcess;
  ready: boolean;
}

interface KeyPool {
  spares: Spare[];
  start: () => Promise<TaskProcess>;
  refilling: boolean;
  /** Spares this key keeps now: 1 at first, doubled by each take that found none ready (up to `sparesPerKey()`). */
  want: number;
}

/**
 * Started, never-used task processes per recent deployment, so that a claimed run skips Node's
 * start-up. A process from the pool has run nothing: it waits for its first `execute`, and is handed
 * out once — `take` removes it from the pool. A key keeps one spare at first; each take that finds
 * none ready (runs came faster than a spare boots) doubles what it keeps, up to `sparesPerKey()`,
 * and spares left unused for `idleMs` are stopped down to one (the newest ready spare is handed out
 * first, so the extra ones are those that age). All keys' spares take at most a quarter of the host's
 * free memory. A take starts the refill in the background after the hand-off, spawning one process
 * at a time. The pool reads each spare's `ready` itself: a ready spare is handed out before one still
 * booting, and the taker sends `execute` at once. The least recently used key's spares are killed
 * when more than `maxDeployments` keys have some.
 */
export function createWarmPool(options: WarmPoolOptions = {}) {
  const maxDeployments = options.maxDeployments ?? 4;
  const sparesPerKey = options.sparesPerKey ?? (() => 1);
  const spareBytes = options.spareBytes ?? 64 * 1024 * 1024;
  const idleMs = options.idleMs ?? 60_000;
  const pools = new Map<string, KeyPool>();
  let closed = false;

  const kill = (spare: Spare) => void spare.proc.then((p) => p.kill()).catch(() => {});
  const total = () => [...pools.values()].reduce((n, p) => n + p.spares.length, 0);
  /** The most spares a key may keep now: what the caller allows, and what the host's free memory does. */
  const cap = () => Math.max(0, Math.min(sparesPerKey(), Math.floor(freemem() / 4 / spareBytes)));
  const target = (pool: KeyPool) => Math.min(pool.want, cap());

  /** Stops spares unused for idleMs, oldest first, down to one per key. */
  function sweep(): void {
    const now = Date.now();
    for (const pool of pools.values()) {
      pool.spares = pool.spares.filter((s) => !s.dead);
      const idle = pool.spares.filter((s) => s.isReady && now - s.readyAt >= idleMs).sort((a, b) => a.readyAt - b.readyAt);
      const stopped = idle.slice(0, Math.max(0, pool.spares.length - 1));
      if (stopped.length === 0) continue;
      pool.spares = pool.spares.filter((s) => !stopped.includes(s));
      stopped.forEach(kill);
      pool.want = Math.max(1, pool.spares.length);
    }
  }
  const sweeper = setInterval(sweep, Math.min(idleMs, 10_000));
  sweeper.unref();

  function startSpare(key: string, pool: KeyPool): Spare {
    const proc = pool.start();
    const spare: Spare = { proc, ready: Promise.resolve(false), isReady: false, readyAt: 0, dead: false };
    proc.then(
      (p) => p.exited.then(() => (spare.dead = true)),
      () => (spare.dead = true),
    );
    spare.ready = proc.then(readyOf).then(
      () => {
        spare.isReady = !spare.dead;
        spare.readyAt = Date.now();
        if (spare.isReady) options.onReady?.(key);
        return spare.isReady;
      },
      () => ((spare.dead = true), false),
    );
    return spare;
  }

  /** The process's `ready` read off its channel (or a rejection when it dies first). */
  async function readyOf(p: TaskProcess): Promise<void> {
    await Promise.race([readReady(p.ipc), p.exited.then(() => Promise.reject(new Error("the spare exited before it was ready")))]);
  }

  /** Tops the key up to its target, one spawn at a time. */
  function refill(key: string, pool: KeyPool): void {
    if (pool.refilling || closed) return;
    pool.refilling = true;
    void (async () => {
      try {
        while (!closed && pools.get(key) === pool && pool.spares.filter((s) => !s.dead).length < target(pool) && total() < cap() * maxDeployments) {
          const spare = startSpare(key, pool);
          pool.spares.push(spare);
          // One spawn at a time; the spares then boot side by side. Waiting for each to be ready instead (one boot at
          // a time) let back-to-back runs drain the pool: 447 ms trigger → start against 159 ms (bench/trigger-latency).
          await spare.proc.catch(() => {});
        }
      } finally {
        pool.refilling = false;
      }
    })();
  }

  function touch(key: string, start: () => Promise<TaskProcess>): KeyPool {
    let pool = pools.get(key);
    if (pool) {
      pools.delete(key); // re-insert: most recently used last
      pool.start = start;
      // Runs come faster than one spare boots: keep more (a key's first take has had no chance to keep any).
      if (!pool.spares.some((s) => s.isReady && !s.dead)) pool.want = Math.min(pool.want * 2, Math.max(1, cap()));
    } else {
      pool = { spares: [], start, refilling: false, want: 1 };
    }
    pools.set(key, pool);
    while (pools.size > maxDeployments) {
      const [oldest, old] = pools.entries().next().value as [string, KeyPool];
      pools.delete(oldest);
      old.spares.splice(0).forEach(kill);
    }
    return pool;
  }

  return {
    /**
     * A started process for this deployment: a ready spare when there is one (the newest), else the spare that
     * started first (once it is ready), else a fresh one. The refill starts on the next turn of the
     * event loop — after the caller sent its `execute` — so spawning the next spare (a fork of the
     * whole runner) does not sit between the claim and the task's code.
     */
    async take(key: string, start: () => Promise<TaskProcess>): Promise<TakenProcess> {
      const pool = touch(key, start);
      const refillLater = () => setImmediate(() => refill(key, pool));
      for (;;) {
        pool.spares = pool.spares.filter((s) => !s.dead);
        // The newest ready spare: the older ones age, and the sweep stops them when runs slow down.
        const i = pool.spares.map((s) => s.isReady).lastIndexOf(true);
        const [spare] = pool.spares.splice(Math.max(0, i), 1);
        if (!spare) break;
        const ready = await spare.ready;
        const proc = await spare.proc.catch(() => null);
        if (!ready || !proc || spare.dead) continue;
        refillLater();
        // The pool paused the channel after `ready`; the caller listens on it from now on.
        setImmediate(() => proc.ipc.resume());
        return { proc, ready: true };
      }
      const proc = start();
      // Start the refill after this run's own process, not before it.
      void proc.finally(refillLater).catch(() => {});
      return { proc: await proc, ready: false };
    },
    /** Spares currently held for a key (tests, metrics). */
    size(key: string): number {
      return pools.get(key)?.spares.filter((s) => !s.dead).length ?? 0;
    },
    /** Spares held for a key that said `ready` (tests, metrics). */
    readySize(key: string): number {
      return pools.get(key)?.spares.filter((s) => !s.dead && s.isReady).length ?? 0;
    },
    async close(): Promise<void> {
      closed = true;
      clearInterval(sweeper);
      const all = [...pools.values()].flatMap((p) => p.spares.splice(0));
      pools.clear();
      await Promise.all(all.map((s) => s.proc.then((p) => p.kill()).catch(() => {})));
    },
  };
}

export type WarmPool = ReturnType<typeof createWarmPool>;
