import type { TaskProcess } from "./workload/index.ts";

/**
 * One idle, never-used task process per recent deployment, started ahead so that a claimed run skips
 * Node's start-up. A process from the pool has run nothing: it waits for its first `execute`. Taking
 * one starts its replacement in the background; the oldest deployment's spare is killed when more
 * than `maxDeployments` have one.
 */
export function createWarmPool(maxDeployments = 4) {
  const spares = new Map<string, { proc: Promise<TaskProcess>; dead: boolean }>();
  let closed = false;

  function refill(key: string, start: () => Promise<TaskProcess>): void {
    if (closed) return;
    const entry = { proc: start(), dead: false };
    entry.proc.then((p) => p.exited.then(() => (entry.dead = true)), () => (entry.dead = true));
    spares.set(key, entry);
    while (spares.size > maxDeployments) {
      const [oldest, spare] = spares.entries().next().value as [string, typeof entry];
      spares.delete(oldest);
      void spare.proc.then((p) => p.kill()).catch(() => {});
    }
  }

  return {
    /** A started process for this deployment: the spare when there is a live one, else a fresh one. */
    async take(key: string, start: () => Promise<TaskProcess>): Promise<TaskProcess> {
      const spare = spares.get(key);
      spares.delete(key);
      refill(key, start);
      if (spare && !spare.dead) {
        const proc = await spare.proc.catch(() => null);
        if (proc && !spare.dead) return proc;
      }
      return start();
    },
    async close(): Promise<void> {
      closed = true;
      const all = [...spares.values()];
      spares.clear();
      await Promise.all(all.map((s) => s.proc.then((p) => p.kill()).catch(() => {})));
    },
  };
}

export type WarmPool = ReturnType<typeof createWarmPool>;
