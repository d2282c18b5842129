import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { readGitInfo } from "../git-info.ts";
import { sharedLibraries } from "../runtime-layer.ts";
import { writeLayer } from "../layer.ts";
import { assembleImage, type BuiltImage } from "../oci-image.ts";
import { addHostFile, addProgram, addTree, EntrySet } from "./collect-files.ts";

const run = promisify(execFile);

/** Where Stasis sits in its own image; the entrypoint is its CLI (`stasis server`, `stasis runner`, …). */
export const PLATFORM_APP_DIR = "opt/stasis/app";

/**
 * What the server and the runner start: a shell for the task supervisor, the namespace tools, tar
 * and zstd for checkpoints, the mount tools CRIU's mount handling needs, and coreutils the runner's
 * scripts call — task-root.sh, which builds a sandboxed task's root, among them (mknod, pivot_root,
 * xargs…). Node and CRIU are added on their own.
 */
export const PLATFORM_PROGRAMS = [
  "sh", "bash", "env", "cat", "sleep", "kill", "id", "getent", "test", "cp", "rm", "rmdir", "mkdir", "ls", "ln", "chmod", "mv", "ps",
  "dirname", "xargs", "mknod", "unshare", "nsenter", "setsid", "setpriv", "mount", "umount", "pivot_root", "tar", "gzip", "zstd", "ip",
];

/** The parts of the repository the CLI loads (`stasis server|runner|deploy|github-app`), tests left out. */
const APP_DIRS = ["cli", "server", "runner", "sdk", "schemas", "builder", "github-app"];

export interface BuildPlatformImageOptions {
  /** The Stasis checkout (with `npm ci` done: dist/ and node_modules/ are taken from it). */
  repoRoot: string;
  blobsDir: string;
  /** The Node the image runs; default the `node` running this build. */
  nodeBinary?: string;
  /** The CRIU install to carry: the wrapper on PATH and the prefix it runs from (scripts/setup-system.sh). */
  criu?: { wrapper: string; prefix: string };
  onProgress?: (message: string) => void;
}

export interface PlatformImage extends BuiltImage {
  nodeVersion: string;
  criuVersion: string;
  fileCount: number;
}

const ETC: Array<{ path: string; data: string }> = [
  { path: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" },
  { path: "etc/group", data: "root:x:0:\nnogroup:x:65534:\n" },
  { path: "etc/nsswitch.conf", data: "passwd: files\ngroup: files\nhosts: files dns\n" },
  { path: "etc/hosts", data: "127.0.0.1 localhost\n::1 localhost\n" },
];

/** `/bin` → `usr/bin` and friends, as on merged-/usr Debian (the layers hold only `usr/…` paths). */
async function mergedUsrLinks(set: EntrySet): Promise<void> {
  for (const dir of ["bin", "sbin", "lib", "lib64"]) {
    const real = await realpath(`/${dir}`).catch(() => null);
    if (real && real !== `/${dir}`) set.add({ type: "symlink", path: dir, target: real.slice(1) });
  }
}

async function systemLayerEntries(o: BuildPlatformImageOptions): Promise<{ set: EntrySet; nodeVersion: string; criuVersion: string }> {
  const set = new EntrySet();
  await mergedUsrLinks(set);
  const node = o.nodeBinary ?? process.execPath;
  const nodeVersion = (await run(node, ["--version"])).stdout.trim();
  // The image's node is /usr/local/bin/node whichever path the builder's had.
  await addHostFile(set, node, "usr/local/bin/node");
  for (const lib of await sharedLibraries(node)) await addHostFile(set, lib);
  for (const program of PLATFORM_PROGRAMS) await addProgram(set, program);

  const criu = o.criu ?? { wrapper: "/usr/local/bin/criu", prefix: "/opt/stasis/criu/root" };
  if (!existsSync(criu.wrapper)) throw new Error(`no CRIU at ${criu.wrapper}: run scripts/setup-system.sh (it installs CRIU 4.2)`);
  const criuVersion = (await run(criu.wrapper, ["--version"])).stdout.match(/Version:\s*(\S+)/)?.[1] ?? "unknown";
  await addHostFile(set, criu.wrapper, "usr/local/bin/criu");
  if (existsSync(criu.prefix)) await addTree(set, criu.prefix, criu.prefix.replace(/^\/+/, ""));

  const certs = "/etc/ssl/certs/ca-certificates.crt";
  if (existsSync(certs)) await addHostFile(set, certs, certs.slice(1));
  for (const f of ETC) set.add({ type: "file", path: f.path, data: Buffer.from(f.data) });
  for (const dir of ["tmp", "root", "proc", "sys", "dev", "run", "var/lib/stasis", "checkpoints"]) set.add({ type: "dir", path: dir, mode: dir === "tmp" ? 0o1777 : 0o755 });
  return { set, nodeVersion, criuVersion };
}

/** The committed sources of the parts the CLI loads, dist/ (built by `prepare`) and the production node_modules. */
async function appLayerEntries(repoRoot: string): Promise<EntrySet> {
  const set = new EntrySet();
  const { stdout } = await run("git", ["-C", repoRoot, "ls-files", "-z", "--", "package.json", "package-lock.json", ...APP_DIRS], { maxBuffer: 64 << 20 });
  for (const file of stdout.split("\0").filter(Boolean).sort()) {
    if (/\.test\.ts$/.test(file) || !existsSync(join(repoRoot, file))) continue;
    await addHostFile(set, join(repoRoot, file), join(PLATFORM_APP_DIR, file));
  }
  if (!existsSync(join(repoRoot, "dist/sdk/index.js"))) throw new Error(`${repoRoot}/dist is not built: run npm ci (its prepare step builds it) first`);
  await addTree(set, join(repoRoot, "dist"), join(PLATFORM_APP_DIR, "dist"));
  const ls = await run("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: repoRoot, maxBuffer: 64 << 20 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }));
  const packages = ls.stdout.split("\n").filter((p) => p.startsWith(join(repoRoot, "node_modules") + "/")).sort();
  if (packages.length === 0) throw new Error(`no production packages under ${repoRoot}/node_modules: run npm ci first`);
  for (const dir of packages) {
    // A package's own nested node_modules are listed (and added) as packages of their own when needed.
    await addTree(set, dir, join(PLATFORM_APP_DIR, dir.slice(repoRoot.length + 1)), (rel) => rel === "node_modules" || rel.startsWith("node_modules/.bin"));
  }
  return set;
}

/**
 * Stasis's own image, server and runner in one: Node, CRIU and the tools the runner calls in a
 * system layer, the Stasis package in an app layer. Every entry has owner 0:0, a fixed mode and
 * the commit's time, so one checkout on one machine gives one digest.
 */
export async function buildPlatformImage(o: BuildPlatformImageOptions): Promise<PlatformImage> {
  const git = await readGitInfo(o.repoRoot);
  const epoch = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : git?.committedAt ?? 0;
  const created = new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  o.onProgress?.("collecting Node, CRIU, the runner's tools and the app's files");
  const [system, app] = await Promise.all([systemLayerEntries(o), appLayerEntries(o.repoRoot)]);
  // Each layer is compressed on its own thread of libuv's pool: the two go side by side.
  o.onProgress?.(`writing the system layer (${system.set.size} files) and the app layer (${app.size} files)`);
  const [systemLayer, appLayer] = await Promise.all([
    writeLayer(system.set.entries, { blobsDir: o.blobsDir, mtime: epoch }),
    writeLayer(app.entries, { blobsDir: o.blobsDir, mtime: epoch }),
  ]);
  const pkg = JSON.parse(await readFile(join(o.repoRoot, "package.json"), "utf8")) as { version: string };
  const image = await assembleImage({
    blobsDir: o.blobsDir,
    layers: [systemLayer, appLayer],
    entrypoint: ["/usr/local/bin/node", `/${PLATFORM_APP_DIR}/cli/bin.mjs`],
    env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "UV_USE_IO_URING=0", "NODE_ENV=production"],
    workingDir: `/${PLATFORM_APP_DIR}`,
    created,
    labels: {
      "org.opencontainers.image.title": "stasis",
      "org.opencontainers.image.version": pkg.version,
      "org.opencontainers.image.created": created,
      ...(git ? { "org.opencontainers.image.revision": git.sha } : {}),
      "stasis.node-version": system.nodeVersion,
      "stasis.criu-version": system.criuVersion,
    },
  });
  return Object.assign(image, { nodeVersion: system.nodeVersion, criuVersion: system.criuVersion, fileCount: system.set.size + app.size });
}
