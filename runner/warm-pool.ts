import { freemem } from "node:os";
import type { TaskProcess } from "./workload/index.ts";

export interface WarmPoolOptions {
  /** Deployments (keys) that keep spares; the least recently used one loses its spares first. Default 4. */
  maxDeployments?: number;
  /** How many spares one key should have, asked at each refill (e.g. the runner's free slots). Default 1. */
  sparesPerKey?: () => number;
  /** Memory one idle spare is counted at when bounding the pool by the host's free memory. Default 64 MiB. */
  spareBytes?: number;
}

interface Spare {
  proc: Promise<TaskProcess>;
  dead: boolean;
}

interface KeyPool {
  spares: Spare[];
  start: () => Promise<TaskProcess>;
  refilling: boolean;
}

/**
 * Started, never-used task processes per recent deployment, so that a claimed run skips Node's
 * start-up. A process from the pool has run nothing: it waits for its first `execute`, and is handed
 * out once — `take` removes it from the pool. Each key keeps up to `sparesPerKey()` spares (bounded
 * so that the spares of all keys take at most a quarter of the host's free memory); a take starts the
 * refill in the background, one process at a time, so refilling never competes with a burst for
 * more than one core's worth of start-ups. The least recently used key's spares are killed when more
 * than `maxDeployments` keys have some.
 */
export function createWarmPool(options: WarmPoolOptions = {}) {
  const maxDeployments = options.maxDeployments ?? 4;
  const sparesPerKey = options.sparesPerKey ?? (() => 1);
  const spareBytes = options.spareBytes ?? 64 * 1024 * 1024;
  const pools = new Map<string, KeyPool>();
  let closed = false;

  const kill = (spare: Spare) => void spare.proc.then((p) => p.kill()).catch(() => {});
  const total = () => [...pools.values()].reduce((n, p) => n + p.spares.length, 0);
  const target = () => {
    const byMemory = Math.floor(freemem() / 4 / spareBytes);
    return Math.max(0, Math.min(sparesPerKey(), byMemory));
  };

  function startSpare(pool: KeyPool): Spare {
    const spare: Spare = { proc: pool.start(), dead: false };
    spare.proc.then(
      (p) => p.exited.then(() => (spare.dead = true)),
      () => (spare.dead = true),
    );
    return spare;
  }

  /** Tops the key up to its target, one start at a time; the first start is already under way when this returns. */
  function refill(key: string, pool: KeyPool): void {
    if (pool.refilling || closed) return;
    pool.refilling = true;
    void (async () => {
      try {
        while (!closed && pools.get(key) === pool && pool.spares.filter((s) => !s.dead).length < target() && total() < target() * maxDeployments) {
          const spare = startSpare(pool);
          pool.spares.push(spare);
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
    } else {
      pool = { spares: [], start, refilling: false };
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
    /** A started process for this deployment: a live spare when there is one, else a fresh one. */
    async take(key: string, start: () => Promise<TaskProcess>): Promise<TaskProcess> {
      const pool = touch(key, start);
      for (;;) {
        const spare = pool.spares.shift();
        if (!spare) break;
        if (spare.dead) continue;
        refill(key, pool);
        const proc = await spare.proc.catch(() => null);
        if (proc && !spare.dead) return proc;
      }
      const proc = start();
      // Start the refill after this run's own process, not before it.
      void proc.finally(() => refill(key, pool)).catch(() => {});
      return await proc;
    },
    /** Spares currently held for a key (tests, metrics). */
    size(key: string): number {
      return pools.get(key)?.spares.filter((s) => !s.dead).length ?? 0;
    },
    async close(): Promise<void> {
      closed = true;
      const all = [...pools.values()].flatMap((p) => p.spares.splice(0));
      pools.clear();
      await Promise.all(all.map((s) => s.proc.then((p) => p.kill()).catch(() => {})));
    },
  };
}

export type WarmPool = ReturnType<typeof createWarmPool>;
