// Hand-written tar layers (no library that would sanitize the paths) assembled into a real OCI
// image-layout dir, so a test can hand the image store exactly what an attacker would push.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export type RawEntry =
  | { type: "file"; path: string; data?: string }
  | { type: "dir"; path: string }
  | { type: "symlink"; path: string; target: string }
  | { type: "hardlink"; path: string; target: string };

function field(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value.slice(0, length), offset, "utf8");
}

function octal(buf: Buffer, offset: number, length: number, value: number): void {
  field(buf, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

function header(entry: RawEntry, size: number): Buffer {
  if (entry.path.length > 100 || ("target" in entry && entry.target.length > 100)) throw new Error(`crafted tar: ${entry.path} is longer than a ustar name`);
  const h = Buffer.alloc(512);
  field(h, 0, 100, entry.path);
  octal(h, 100, 8, entry.type === "dir" ? 0o755 : 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, 0);
  h.fill(" ", 148, 156);
  h.write({ file: "0", dir: "5", symlink: "2", hardlink: "1" }[entry.type], 156);
  if (entry.type === "symlink" || entry.type === "hardlink") field(h, 157, 100, entry.target);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  field(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** A tar stream with exactly these entry paths and link targets. */
export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.type === "file" ? Buffer.from(entry.data ?? "x") : Buffer.alloc(0);
    parts.push(header(entry, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

async function blob(dir: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha(bytes);
  await writeFile(join(dir, "blobs", "sha256", digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** Writes an OCI layout dir holding one image of these layers; returns its `oci-layout:` reference. */
export async function craftedImage(dir: string, layers: RawEntry[][]): Promise<{ ref: string; digest: string }> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const tars = layers.map(rawTar);
  const layerDescs = [];
  for (const tar of tars) layerDescs.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...(await blob(dir, gzipSync(tar))) });
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: tars.map(sha) } }));
  const configDesc = { mediaType: "application/vnd.oci.image.config.v1+json", ...(await blob(dir, config)) };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: configDesc, layers: layerDescs }));
  const m = await blob(dir, manifest);
  await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...m }] }));
  return { ref: `oci-layout:${dir}@${m.digest}`, digest: m.digest };
}
