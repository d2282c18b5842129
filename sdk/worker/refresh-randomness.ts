// A checkpoint copies a process's memory, random number generators included: restored twice, one
// checkpoint would mint the same "random" values twice. Measured here (Node 20, OpenSSL 3.0, CRIU
// 4.2): after two restores of one checkpoint, `randomUUID()`, `Math.random()`, `randomBytes()` and
// `crypto.getRandomValues()` all returned the same values in both. What the worker owns, it makes
// fresh after every restore; README "After a restore" lists the rest.
import crypto from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";

/** Node mints UUIDs from a cache of 128 × 16 random bytes, refilled when its slot counter wraps. */
const UUID_CACHE_SLOTS = 128;
const POOL_BYTES = 4096;

/**
 * Random bytes for Math.random and randomUUID, read from the kernel (/dev/urandom), not from
 * OpenSSL: OpenSSL's generator is process memory too and reseeds only after 2^16 requests or
 * 7 minutes. The unread rest of the pool is thrown away after a restore.
 */
function createPool() {
  let fd: number | null = null;
  try {
    fd = openSync("/dev/urandom", "r");
  } catch {
    fd = null;
  }
  const pool = Buffer.alloc(POOL_BYTES);
  let offset = POOL_BYTES;
  const refill = () => {
    let filled = 0;
    if (fd !== null) {
      try {
        while (filled < POOL_BYTES) filled += readSync(fd, pool, filled, POOL_BYTES - filled, null);
      } catch {
        closeSync(fd);
        fd = null;
      }
    }
    if (filled < POOL_BYTES) crypto.randomFillSync(pool, filled);
    offset = 0;
  };
  return {
    take(n: number): Buffer {
      if (offset + n > POOL_BYTES) refill();
      const bytes = pool.subarray(offset, offset + n);
      offset += n;
      return bytes;
    },
    discard() {
      offset = POOL_BYTES;
    },
  };
}

let pool: ReturnType<typeof createPool> | null = null;

/** A double in [0, 1) from 53 random bits. */
function cryptoRandom(): number {
  const b = pool!.take(8);
  return ((b.readUInt32BE(0) >>> 5) * 67108864 + (b.readUInt32BE(4) >>> 6)) / 9007199254740992;
}

function cryptoRandomUUID(): `${string}-${string}-${string}-${string}-${string}` {
  const b = Buffer.from(pool!.take(16));
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Replaces `Math.random` (V8's xorshift state cannot be reseeded: it would replay its sequence after
 * every restore) and `randomUUID` (`node:crypto` and `globalThis.crypto`; Node's own keeps a cache
 * of random bytes) with versions drawing from the pool. Once per process, before task code runs.
 */
export function installRefreshableRandomness(): void {
  if (pool) return;
  pool = createPool();
  Math.random = cryptoRandom;
  (crypto as { randomUUID: () => string }).randomUUID = cryptoRandomUUID;
  const web = globalThis.crypto as (Crypto & { randomUUID: () => string }) | undefined;
  if (web) Object.defineProperty(web, "randomUUID", { value: cryptoRandomUUID, configurable: true, writable: true });
  // ESM `import { randomUUID } from "node:crypto"` sees the replacement too.
  syncBuiltinESMExports();
}

/**
 * After a restore: throw away random bytes drawn before the checkpoint — the pool behind Math.random
 * and randomUUID, and Node's own UUID cache (for code that kept a reference to the original
 * `randomUUID`), which is used up so its next refill draws new bytes.
 */
export function refreshRandomnessAfterRestore(): void {
  pool?.discard();
  const original = nodeRandomUUID;
  for (let i = 0; i < UUID_CACHE_SLOTS; i++) original();
}

const nodeRandomUUID = crypto.randomUUID.bind(crypto);
