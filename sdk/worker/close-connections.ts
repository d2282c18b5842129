// Before a checkpoint the task drops the TCP connections the SDK's side of Node keeps for it: an
// established socket survives at most one restore (and the peer may close it while the run is
// frozen), so a pooled keep-alive socket would fail the first `fetch` after a restore.

/** Where Node's built-in `fetch` (undici) keeps its global dispatcher. */
const GLOBAL_DISPATCHER = Symbol.for("undici.globalDispatcher.1");

interface Dispatcher {
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Swaps `fetch`'s connection pool for a fresh one and closes the old pool's sockets (waiting up to
 * `graceMs` for requests in flight). Only the default `Agent` is swapped: a dispatcher the task set
 * itself (a proxy, custom options) is left alone.
 */
export async function closePooledConnections(graceMs = 1000): Promise<void> {
  const holder = globalThis as unknown as Record<symbol, Dispatcher | undefined>;
  const old = holder[GLOBAL_DISPATCHER];
  if (!old || old.constructor?.name !== "Agent") return;
  holder[GLOBAL_DISPATCHER] = new (old.constructor as new () => Dispatcher)();
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    old.close().then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
  ]);
  clearTimeout(timer);
  if (!closed) await old.destroy().catch(() => {});
}
