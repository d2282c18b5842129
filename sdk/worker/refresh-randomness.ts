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
const POOL_WORDS = 4096;

/**
 * Random 32-bit words for Math.random and randomUUID, read from the kernel (/dev/urandom), not from
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
  const words = new Uint32Array(POOL_WORDS);
  const bytes = new Uint8Array(words.buffer);
  let next = POOL_WORDS;
  const refill = () => {
    let filled = 0;
    if (fd !== null) {
      try {
        while (filled < bytes.length) filled += readSync(fd, bytes, filled, bytes.length - filled, null);
      } catch {
        closeSync(fd);
        fd = null;
      }
    }
    if (filled < bytes.length) crypto.randomFillSync(bytes, filled);
    next = 0;
  };
  return {
    word(): number {
      if (next === POOL_WORDS) refill();
      return words[next++];
    },
    discard() {
      next = POOL_WORDS;
    },
  };
}

let pool: ReturnType<typeof createPool> | null = null;

/** A double in [0, 1) from 53 random bits. */
function cryptoRandom(): number {
  return ((pool!.word() >>> 5) * 67108864 + (pool!.word() >>> 6)) / 9007199254740992;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function cryptoRandomUUID(): `${string}-${string}-${string}-${string}-${string}` {
  const b: number[] = [];
  for (let i = 0; i < 4; i++) {
    const w = pool!.word();
    b.push(w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24);
  }
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
  const h = b.map((x) => HEX[x]);
  return `${h[0]}${h[1]}${h[2]}${h[3]}-${h[4]}${h[5]}-${h[6]}${h[7]}-${h[8]}${h[9]}-${h[10]}${h[11]}${h[12]}${h[13]}${h[14]}${h[15]}`;
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
