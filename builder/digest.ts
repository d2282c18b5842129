import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function sha256(data: Buffer | string): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return "sha256:" + hash.digest("hex");
}

/** `sha256:abc…` → `abc…`, refusing anything that is not a sha256 digest (it becomes a file name). */
export function digestHex(digest: string): string {
  if (!DIGEST_RE.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return digest.slice("sha256:".length);
}
