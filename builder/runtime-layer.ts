import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, realpath, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sha256 } from "./digest.ts";
import { BuilderError, toError } from "./errors.ts";
import { writeLayer, type LayerBlob } from "./layer.ts";
import type { TarEntry } from "./tar-writer.ts";

const run = promisify(execFile);
const LAYER_FORMAT = "runtime-v1";

export function stasisCacheDir(): string {
  return process.env.STASIS_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "stasis");
}

/** Shared libraries a binary needs, as `ldd` lists them (absolute paths, the loader included). */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run("ldd", [binary]);
  const libs: string[] = [];
  for (const line of stdout.split("\n")) {
    const m = line.match(/=>\s+(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

const STATIC_FILES: Array<{ path: string; data: string }> = [
  { path: "etc/passwd", data: "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" },
  { path: "etc/group", data: "root:x:0:\nnogroup:x:65534:\n" },
  { path: "etc/nsswitch.conf", data: "passwd: files\ngroup: files\nhosts: files dns\n" },
  { path: "etc/hosts", data: "127.0.0.1 localhost\n::1 localhost\n" },
];

/** What goes into the runtime layer: the local `node`, its libraries, CA certificates, a minimal /etc. */
export async function runtimeEntries(nodeBinary = process.execPath): Promise<{ entries: TarEntry[]; sources: string[] }> {
  const node = await realpath(nodeBinary);
  const entries: TarEntry[] = [];
  const sources: string[] = [node];
  entries.push({ type: "file", path: "usr/local/bin/node", source: node, size: (await stat(node)).size, mode: 0o755 });
  for (const lib of await sharedLibraries(node)) {
    const real = await realpath(lib);
    sources.push(real);
    entries.push({ type: "file", path: lib, source: real, size: (await stat(real)).size, mode: 0o755 });
  }
  const certs = "/etc/ssl/certs/ca-certificates.crt";
  if (existsSync(certs)) {
    const real = await realpath(certs);
    sources.push(real);
    entries.push({ type: "file", path: certs, source: real, size: (await stat(real)).size });
  }
  for (const f of STATIC_FILES) entries.push({ type: "file", path: f.path, data: Buffer.from(f.data) });
  for (const dir of ["tmp", "root", "app", "proc", "sys", "dev"]) entries.push({ type: "dir", path: dir, mode: dir === "tmp" ? 0o1777 : 0o755 });
  return { entries, sources };
}

/**
 * The runtime layer assembled from the local Node, cached under the stasis cache dir by the
 * identity (path, size, mtime) of every file it holds. Its mtime is 0: the layer does not depend on
 * the commit, so every version shares it and a registry stores it once.
 */
export async function localNodeRuntimeLayer(onProgress?: (message: string) => void): Promise<LayerBlob> {
  let built: { entries: TarEntry[]; sources: string[] };
  try {
    built = await runtimeEntries();
  } catch (err) {
    throw new BuilderError("RUNTIME_LAYER_FAILED", `could not assemble the Node runtime layer: ${toError(err).message}`, { cause: err });
  }
  const identity = await Promise.all(built.sources.map(async (p) => { const s = await stat(p); return [p, s.size, s.mtimeMs]; }));
  const key = sha256(JSON.stringify([LAYER_FORMAT, identity])).slice(7, 39);
  const cacheDir = join(stasisCacheDir(), "layers");
  const indexFile = join(cacheDir, `runtime-${key}.json`);
  const cached = await readFile(indexFile, "utf8").then((t) => JSON.parse(t) as LayerBlob, () => null);
  if (cached && (await stat(cached.path).catch(() => null))?.size === cached.size) return cached;
  onProgress?.(`assembling the Node ${process.version} runtime layer (cached afterwards)`);
  const layer = await writeLayer(built.entries, { blobsDir: join(cacheDir, "blobs"), mtime: 0 });
  await mkdir(cacheDir, { recursive: true });
  await writeFile(indexFile, JSON.stringify(layer));
  return layer;
}
