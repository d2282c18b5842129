import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";

/**
 * The one place that encrypts. AES-256-GCM (node:crypto) everywhere, with a fresh 96-bit IV per
 * message and additional authenticated data (AAD) that binds a ciphertext to where it belongs:
 * a data key to its project, a value to its project, scope and name. A row copied onto another
 * project, environment or name fails to decrypt instead of silently handing over another secret.
 *
 * Blob layout: version byte (1) | iv (12) | tag (16) | ciphertext.
 */
const FORMAT = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

export class DecryptError extends Error {
  override name = "DecryptError";
}

export interface MasterKey {
  /** The key check value: an HMAC of a fixed label under the key, recorded next to what it wrapped. */
  id: string;
  key: Buffer;
}

/** 32 bytes, as base64 (standard or url-safe) or hex; anything else is refused naming the rule. */
export function parseMasterKey(text: string, variable = "STASIS_ENCRYPTION_KEY"): MasterKey {
  const trimmed = text.trim();
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, "hex");
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) key = Buffer.from(trimmed.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  if (!key || key.length !== KEY_BYTES) {
    throw new Error(`${variable} must be 32 random bytes written as base64 (44 characters) or hex (64 characters); generate one with \`openssl rand -base64 32\``);
  }
  return { id: masterKeyId(key), key };
}

export function masterKeyId(key: Buffer): string {
  return createHmac("sha256", key).update("stasis master key check v1").digest("hex").slice(0, 16);
}

export function generateKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([FORMAT]), iv, cipher.getAuthTag(), body]);
}

function open(key: Buffer, blob: Buffer, aad: string, what: string): Buffer {
  if (blob.length < 1 + IV_BYTES + TAG_BYTES || blob[0] !== FORMAT) throw new DecryptError(`${what} is not a Stasis ciphertext (format ${blob[0]})`);
  const iv = blob.subarray(1, 1 + IV_BYTES);
  const tag = blob.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key, iv);
  decipher.setAAD(Buffer.from(aad, "utf8"));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(blob.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch (error) {
    throw new DecryptError(`${what} failed GCM authentication: wrong key, or the row was altered or moved`, { cause: error });
  }
}

const dataKeyAad = (projectId: string) => JSON.stringify(["stasis/data-key/v1", projectId]);
const valueAad = (where: ValuePlace) => JSON.stringify(["stasis/envvar/v1", where.projectId, where.scope, where.name]);

export interface ValuePlace {
  projectId: string;
  /** An environment slug, or `preview` for the set every `preview/*` environment inherits. */
  scope: string;
  name: string;
}

export function wrapDataKey(master: MasterKey, projectId: string, dataKey: Buffer): Buffer {
  return seal(master.key, dataKey, dataKeyAad(projectId));
}

export function unwrapDataKey(master: MasterKey, projectId: string, wrapped: Buffer): Buffer {
  return open(master.key, wrapped, dataKeyAad(projectId), `the data key of project ${projectId}`);
}

const checkpointKeyAad = (where: CheckpointPlace) => JSON.stringify(["stasis/checkpoint-key/v1", where.projectId, where.runId, where.location]);

/** Where a checkpoint key belongs: a wrapped key copied onto another run or location does not unwrap. */
export interface CheckpointPlace {
  projectId: string;
  runId: string;
  location: string;
}

export function wrapCheckpointKey(dataKey: Buffer, where: CheckpointPlace, key: Buffer): Buffer {
  return seal(dataKey, key, checkpointKeyAad(where));
}

export function unwrapCheckpointKey(dataKey: Buffer, where: CheckpointPlace, wrapped: Buffer): Buffer {
  return open(dataKey, wrapped, checkpointKeyAad(where), `the key of checkpoint ${where.location} of run ${where.runId}`);
}

export function encryptValue(dataKey: Buffer, where: ValuePlace, value: string): Buffer {
  return seal(dataKey, Buffer.from(value, "utf8"), valueAad(where));
}

export function decryptValue(dataKey: Buffer, where: ValuePlace, blob: Buffer): string {
  return open(dataKey, blob, valueAad(where), `variable ${where.name} of ${where.scope}`).toString("utf8");
}

/**
 * Where an integration's or connection's secret belongs (its AAD): e.g. `["integration", envId, slug,
 * "client_secret"]` or `["connection", integrationId, externalId, "access_token"]`. A row moved
 * elsewhere fails to decrypt.
 */
export type SecretPlace = readonly string[];
const secretAad = (projectId: string, place: SecretPlace) => JSON.stringify(["stasis/connection/v1", projectId, ...place]);

export function encryptSecret(dataKey: Buffer, projectId: string, place: SecretPlace, value: string): Buffer {
  return seal(dataKey, Buffer.from(value, "utf8"), secretAad(projectId, place));
}

export function decryptSecret(dataKey: Buffer, projectId: string, place: SecretPlace, blob: Buffer): string {
  return open(dataKey, blob, secretAad(projectId, place), `${place[0]} secret ${place[place.length - 1]}`).toString("utf8");
}
