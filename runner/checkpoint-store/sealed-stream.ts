import { createCipheriv, createDecipheriv } from "node:crypto";
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

/** Sealed records in, plaintext out; any altered, missing, reordered or extra byte fails the stream. */
export function createOpenStream(key: Buffer): Transform {
  checkKey(key);
  // Pieces received but not yet opened; joined only once a whole record is there (no copy per piece).
  let parts: Buffer[] = [];
  let partsBytes = 0;
  let wanted = MAGIC.length;
  let index = 0;
  let sawMagic = false;
  let sawLast = false;

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      parts.push(chunk);
      partsBytes += chunk.length;
      if (partsBytes < wanted) return callback();
      let buffered: Buffer = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partsBytes);
      try {
        if (!sawMagic) {
          if (buffered.length < MAGIC.length) return callback();
          if (!buffered.subarray(0, MAGIC.length).equals(MAGIC)) throw new SealedCheckpointError("not a sealed Stasis checkpoint (bad magic)");
          sawMagic = true;
          buffered = buffered.subarray(MAGIC.length);
        }
        while (buffered.length >= HEADER_BYTES) {
          if (sawLast) throw new SealedCheckpointError("bytes after the checkpoint's last record");
          const length = buffered.readUInt32BE(0);
          if (length > CHUNK_BYTES) throw new SealedCheckpointError(`record ${index} claims ${length} bytes, more than a record holds`);
          const total = HEADER_BYTES + length + TAG_BYTES;
          if (buffered.length < total) {
            wanted = total;
            break;
          }
          this.push(openRecord(buffered.subarray(HEADER_BYTES, HEADER_BYTES + length), buffered.subarray(HEADER_BYTES + length, total)));
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
      if (!sawMagic) return callback(new SealedCheckpointError("not a sealed Stasis checkpoint (too short)"));
      if (partsBytes > 0) return callback(new SealedCheckpointError(sawLast ? "bytes after the checkpoint's last record" : "the checkpoint is cut off inside a record"));
      if (!sawLast) return callback(new SealedCheckpointError("the checkpoint is cut off: its last record is missing"));
      callback();
    },
  });

  function openRecord(body: Buffer, tag: Buffer): Buffer {
    // A record is last iff its flag says so; try the flag a full record would have first.
    for (const last of body.length === CHUNK_BYTES ? [false, true] : [true, false]) {
      const decipher = createDecipheriv("aes-256-gcm", key, ivFor(index));
      decipher.setAAD(aadFor(index, last));
      decipher.setAuthTag(tag);
      try {
        const plain = Buffer.concat([decipher.update(body), decipher.final()]);
        index++;
        sawLast = last;
        return plain;
      } catch {
        // try the other flag
      }
    }
    throw new SealedCheckpointError(`record ${index} failed GCM authentication: wrong key, or the checkpoint was altered`);
  }
}
