import { createCipheriv, createDecipheriv } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { Transform, type TransformCallback } from "node:stream";

/**
 * A checkpoint at rest: AES-256-GCM in chunks, so that a checkpoint of hundreds of MB is sealed and
 * opened as a stream, never held in memory whole.
 *
 * Layout: magic `STASISC1` (8 bytes), then records `length (u32 BE) | ciphertext | tag (16)`, each
 * sealing at most CHUNK_BYTES of plaintext. Every checkpoint has its own random key, so the IV can be
 * the record's index (12 bytes, big-endian): no (key, IV) pair repeats. The AAD is the magic, the
 * index and a last-record flag: records cannot be reordered, dropped or cut off at the end unnoticed
 * (the final record is flagged, and nothing may follow it).
 */
const MAGIC = Buffer.from("STASISC1", "latin1");
const CHUNK_BYTES = 1 << 20;
const TAG_BYTES = 16;
const HEADER_BYTES = 4;
export const CHECKPOINT_KEY_BYTES = 32;

export class SealedCheckpointError extends Error {
  override name = "SealedCheckpointError";
}

function ivFor(index: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64BE(BigInt(index), 4);
  return iv;
}

function aadFor(index: number, last: boolean): Buffer {
  const aad = Buffer.alloc(MAGIC.length + 8 + 1);
  MAGIC.copy(aad);
  aad.writeBigUInt64BE(BigInt(index), MAGIC.length);
  aad[MAGIC.length + 8] = last ? 1 : 0;
  return aad;
}

function checkKey(key: Buffer): void {
  if (key.length !== CHECKPOINT_KEY_BYTES) throw new SealedCheckpointError(`a checkpoint key is ${CHECKPOINT_KEY_BYTES} bytes, not ${key.length}`);
}

/** Plaintext in, sealed records out. */
export function createSealStream(key: Buffer): Transform {
  checkKey(key);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let index = 0;
  let started = false;

  const sealRecord = (plain: Buffer, last: boolean): Buffer => {
    const cipher = createCipheriv("aes-256-gcm", key, ivFor(index));
    cipher.setAAD(aadFor(index, last));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    index++;
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(body.length);
    return Buffer.concat([header, body, cipher.getAuthTag()]);
  };

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (!started) {
        started = true;
        this.push(MAGIC);
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      // Keep at least one byte back: the last record is only known at the end.
      while (pendingBytes > CHUNK_BYTES) {
        const all = Buffer.concat(pending);
        this.push(sealRecord(all.subarray(0, CHUNK_BYTES), false));
        const rest = all.subarray(CHUNK_BYTES);
        pending = [rest];
        pendingBytes = rest.length;
      }
      callback();
    },
    flush(callback: TransformCallback) {
      if (!started) this.push(MAGIC);
      this.push(sealRecord(Buffer.concat(pending), true));
      pending = [];
      callback();
    },
  });
}

/**
 * What opening records checks, for the stream and the file reader alike: each record's length, that
 * nothing follows the last one, and each record's GCM tag under its index and last-record flag.
 */
function recordOpener(key: Buffer) {
  let index = 0;
  let sawLast = false;
  return {
    get sawLast() {
      return sawLast;
    },
    /** A record's header announced `length` bytes: refused after the last record, or beyond what a record holds. */
    checkLength(length: number): void {
      if (sawLast) throw afterLast();
      if (length > CHUNK_BYTES) throw new SealedCheckpointError(`record ${index} claims ${length} bytes, more than a record holds`);
    },
    /** The record's plaintext, once its tag authenticated it. */
    open(body: Buffer, tag: Buffer): Buffer {
      // A record is last iff its flag says so; try the flag a full record would have first.
      for (const last of body.length === CHUNK_BYTES ? [false, true] : [true, false]) {
        const decipher = createDecipheriv("aes-256-gcm", key, ivFor(index));
        decipher.setAAD(aadFor(index, last));
        decipher.setAuthTag(tag);
        try {
          const plain = decipher.update(body);
          const rest = decipher.final();
          index++;
          sawLast = last;
          return rest.length ? Buffer.concat([plain, rest]) : plain;
        } catch {
          // try the other flag
        }
      }
      throw new SealedCheckpointError(`record ${index} failed GCM authentication: wrong key, or the checkpoint was altered`);
    },
  };
}

const tooShort = () => new SealedCheckpointError("not a sealed Stasis checkpoint (too short)");
const badMagic = () => new SealedCheckpointError("not a sealed Stasis checkpoint (bad magic)");
const cutInside = () => new SealedCheckpointError("the checkpoint is cut off inside a record");
const lastMissing = () => new SealedCheckpointError("the checkpoint is cut off: its last record is missing");
const afterLast = () => new SealedCheckpointError("bytes after the checkpoint's last record");

/** Sealed records in, plaintext out; any altered, missing, reordered or extra byte fails the stream. */
export function createOpenStream(key: Buffer): Transform {
  checkKey(key);
  const records = recordOpener(key);
  // Pieces received but not yet opened; joined only once a whole record is there (no copy per piece).
  let parts: Buffer[] = [];
  let partsBytes = 0;
  let wanted = MAGIC.length;
  let sawMagic = false;

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      parts.push(chunk);
      partsBytes += chunk.length;
      if (partsBytes < wanted) return callback();
      let buffered: Buffer = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partsBytes);
      try {
        if (!sawMagic) {
          if (buffered.length < MAGIC.length) return callback();
          if (!buffered.subarray(0, MAGIC.length).equals(MAGIC)) throw badMagic();
          sawMagic = true;
          buffered = buffered.subarray(MAGIC.length);
        }
        while (buffered.length >= HEADER_BYTES) {
          const length = buffered.readUInt32BE(0);
          records.checkLength(length);
          const total = HEADER_BYTES + length + TAG_BYTES;
          if (buffered.length < total) {
            wanted = total;
            break;
          }
          this.push(records.open(buffered.subarray(HEADER_BYTES, HEADER_BYTES + length), buffered.subarray(HEADER_BYTES + length, total)));
          buffered = buffered.subarray(total);
          wanted = HEADER_BYTES;
        }
        parts = buffered.length ? [buffered] : [];
        partsBytes = buffered.length;
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(callback: TransformCallback) {
      if (!sawMagic) return callback(tooShort());
      if (partsBytes > 0) return callback(records.sawLast ? afterLast() : cutInside());
      if (!records.sawLast) return callback(lastMissing());
      callback();
    },
  });
}

/**
 * Opens the sealed checkpoint stored as the concatenation of `files` into the new file `out`, with the
 * stream's checks. One read buffer for all records, not a fresh buffer per
 * piece read and per record joined as through streams: on a VM each fresh page costs a fault, and
 * a ~15 MB checkpoint took 20–150 ms to open that way against 15–40 ms this way (bench/suspend-resume,
 * twenty-second round). What it wrote is unauthenticated only past the first failing record: the
 * caller uses `out` only once this resolves.
 */
export async function openSealedFiles(files: string[], out: string, key: Buffer): Promise<void> {
  checkKey(key);
  const records = recordOpener(key);
  const input = concatenatedReader(files);
  const buffer = Buffer.allocUnsafe(HEADER_BYTES + CHUNK_BYTES + TAG_BYTES);
  const output = await open(out, "wx", 0o600);
  try {
    const magic = await input.read(buffer, MAGIC.length);
    if (magic < MAGIC.length) throw tooShort();
    if (!buffer.subarray(0, MAGIC.length).equals(MAGIC)) throw badMagic();
    for (;;) {
      const header = await input.read(buffer, HEADER_BYTES);
      if (header === 0) break;
      if (header < HEADER_BYTES) throw records.sawLast ? afterLast() : cutInside();
      const length = buffer.readUInt32BE(0);
      records.checkLength(length);
      if ((await input.read(buffer, length + TAG_BYTES)) < length + TAG_BYTES) throw cutInside();
      const plain = records.open(buffer.subarray(0, length), buffer.subarray(length, length + TAG_BYTES));
      for (let at = 0; at < plain.length; ) at += (await output.write(plain, at, plain.length - at)).bytesWritten;
    }
    if (!records.sawLast) throw lastMissing();
  } finally {
    await Promise.allSettled([output.close(), input.close()]);
  }
}

/** Reads `files` one after the other as one sequence of bytes, into the caller's buffer. */
function concatenatedReader(files: string[]) {
  let next = 0;
  let current: FileHandle | null = null;
  return {
    /** Fills `buffer[0, length)` as far as the files go: fewer bytes only at their end. */
    async read(buffer: Buffer, length: number): Promise<number> {
      let filled = 0;
      while (filled < length) {
        if (!current) {
          if (next === files.length) break;
          current = await open(files[next++]!, "r");
        }
        const { bytesRead } = await current.read(buffer, filled, length - filled, null);
        if (bytesRead === 0) {
          await current.close();
          current = null;
          continue;
        }
        filled += bytesRead;
      }
      return filled;
    },
    async close(): Promise<void> {
      await current?.close();
      current = null;
    },
  };
}
