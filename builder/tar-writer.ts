import { createReadStream, readFileSync } from "node:fs";

/**
 * A deterministic tar writer: entries sorted by path, parents added, owners 0:0, one mtime for
 * all, fixed modes. Long names go into PAX headers. Nothing here reads the clock or the host's users.
 */
export type TarEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; mode?: number; data: Buffer }
  | { type: "file"; path: string; mode?: number; source: string; size: number }
  | { type: "symlink"; path: string; target: string };

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK * 2);

/** Strips leading `/` and `./`, refuses `..`; directories get no trailing slash here. */
export function normalizeTarPath(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0 || parts.includes("..")) throw new Error(`bad path in layer: ${JSON.stringify(path)}`);
  return parts.join("/");
}

/** Sorted, de-duplicated entries with every parent directory present. A path given twice is an error. */
export function prepareEntries(entries: TarEntry[]): TarEntry[] {
  const byPath = new Map<string, TarEntry>();
  for (const entry of entries) {
    const path = normalizeTarPath(entry.path);
    const existing = byPath.get(path);
    if (existing && !(existing.type === "dir" && entry.type === "dir")) throw new Error(`path added twice to a layer: ${path}`);
    byPath.set(path, { ...entry, path });
  }
  for (const path of [...byPath.keys()]) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      const existing = byPath.get(parent);
      if (!existing) byPath.set(parent, { type: "dir", path: parent });
      else if (existing.type !== "dir") throw new Error(`${parent} is both a file and a directory in a layer`);
    }
  }
  return [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function header(name: string, o: { mode: number; size: number; mtime: number; typeflag: string; linkname?: string }): Buffer {
  const buf = Buffer.alloc(BLOCK);
  buf.write(name, 0, 100, "utf8");
  buf.write(octal(o.mode, 8), 100, "ascii");
  buf.write(octal(0, 8), 108, "ascii");
  buf.write(octal(0, 8), 116, "ascii");
  buf.write(octal(o.size, 12), 124, "ascii");
  buf.write(octal(o.mtime, 12), 136, "ascii");
  buf.write("        ", 148, "ascii");
  buf.write(o.typeflag, 156, "ascii");
  if (o.linkname) buf.write(o.linkname, 157, 100, "utf8");
  buf.write("ustar\0", 257, "ascii");
  buf.write("00", 263, "ascii");
  let sum = 0;
  for (const byte of buf) sum += byte;
  buf.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return buf;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

function* headersFor(name: string, o: { mode: number; size: number; mtime: number; typeflag: string; linkname?: string }): Generator<Buffer> {
  const long = Buffer.byteLength(name) > 100 || (o.linkname !== undefined && Buffer.byteLength(o.linkname) > 100);
  if (long) {
    let records = paxRecord("path", name);
    if (o.linkname !== undefined) records += paxRecord("linkpath", o.linkname);
    const data = Buffer.from(records, "utf8");
    yield header("PaxHeaders/" + name.slice(-80), { mode: 0o644, size: data.length, mtime: o.mtime, typeflag: "x" });
    yield data;
    yield padding(data.length);
  }
  yield header(long ? name.slice(-100) : name, o);
}

/** A file at most this big is read whole, in one synchronous call; a bigger one is streamed in chunks of this size. */
const WHOLE_FILE_BYTES = 1 << 20;
/** The stream is yielded in chunks of about this size (see writeTar). */
const OUTPUT_CHUNK_BYTES = 1 << 20;

/** The contents of a file, checked against the size its header gave. */
async function* fileContent(source: string, size: number): AsyncGenerator<Buffer> {
  let read = 0;
  // A tree of small files (node_modules) read through promises paid four thread-pool hops per file:
  // most of a layer's time went to them. One readFileSync of a small file costs microseconds.
  const chunks = size <= WHOLE_FILE_BYTES ? [readFileSync(source)] : createReadStream(source, { highWaterMark: WHOLE_FILE_BYTES });
  for await (const chunk of chunks) {
    read += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
  if (read !== size) throw new Error(`${source} changed size while it was being archived`);
}

/** The tar stream's pieces: headers, contents, paddings. */
async function* tarPieces(entries: TarEntry[], mtime: number): AsyncGenerator<Buffer> {
  for (const entry of prepareEntries(entries)) {
    if (entry.type === "dir") {
      yield* headersFor(entry.path + "/", { mode: entry.mode ?? 0o755, size: 0, mtime, typeflag: "5" });
    } else if (entry.type === "symlink") {
      yield* headersFor(entry.path, { mode: 0o777, size: 0, mtime, typeflag: "2", linkname: entry.target });
    } else if ("data" in entry) {
      yield* headersFor(entry.path, { mode: entry.mode ?? 0o644, size: entry.data.length, mtime, typeflag: "0" });
      yield entry.data;
      yield padding(entry.data.length);
    } else {
      yield* headersFor(entry.path, { mode: entry.mode ?? 0o644, size: entry.size, mtime, typeflag: "0" });
      yield* fileContent(entry.source, entry.size);
      yield padding(entry.size);
    }
  }
  yield ZERO;
}

/**
 * Yields the tar stream of the entries, in chunks of about a MiB: passed on piece by piece, a tree
 * of small files had gzip and the hashes take a call — and zlib a thread-pool hop — per 512-byte
 * header. `mtime` is seconds since the epoch.
 */
export async function* writeTar(entries: TarEntry[], mtime: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of tarPieces(entries, mtime)) {
    pending.push(piece);
    pendingBytes += piece.length;
    if (pendingBytes >= OUTPUT_CHUNK_BYTES) {
      yield pending.length === 1 ? piece : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
