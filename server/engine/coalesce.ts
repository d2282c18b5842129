import type { Knex } from "knex";

/**
 * Group commit in the server: `add(item)` answers with the item's result from `flush`, which is
 * called for every item added while the previous flush ran. An idle server flushes each item at
 * once (no added wait); under concurrent load the items that queued behind one round trip go in
 * the next one together — one statement and one commit for many requests.
 */
export interface Coalescer<T, R> {
  add(item: T): Promise<R>;
}

export interface CoalesceOptions<T> {
  /** At most this many items per flush. */
  maxItems: number;
  /** At most this much weight per flush (one item alone may exceed it). */
  maxWeight?: number;
  weight?: (item: T) => number;
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/** `flush` answers one result per item, in order; when it throws, every item of that flush gets the error. */
export function coalesce<T, R>(flush: (items: T[]) => Promise<R[]>, options: CoalesceOptions<T>): Coalescer<T, R> {
  const queue: Array<Pending<T, R>> = [];
  let flushing = false;
  const weigh = options.weight ?? (() => 0);

  const take = (): Array<Pending<T, R>> => {
    let weight = 0;
    let n = 0;
    while (n < queue.length && n < options.maxItems) {
      weight += weigh(queue[n].item);
      if (n > 0 && options.maxWeight !== undefined && weight > options.maxWeight) break;
      n++;
    }
    return queue.splice(0, n);
  };

  const drain = async (): Promise<void> => {
    flushing = true;
    while (queue.length > 0) {
      const batch = take();
      try {
        const results = await flush(batch.map((p) => p.item));
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    flushing = false;
  };

  return {
    add(item: T): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        if (!flushing) void drain();
      });
    },
  };
}

/** One coalescer per database handle (each its own pool and replicas' view), made on first use. */
export function coalescerPerDatabase<T, R>(make: (db: Knex) => Coalescer<T, R>): (db: Knex) => Coalescer<T, R> {
  const made = new WeakMap<Knex, Coalescer<T, R>>();
  return (db) => {
    let c = made.get(db);
    if (!c) made.set(db, (c = make(db)));
    return c;
  };
}
