import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface TestRegistry {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  /** Where the registry keeps its blobs (tests may tamper with it). */
  storageDir: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * Starts Debian's `docker-registry` (CNCF distribution) on 127.0.0.1 (or `address`) with its own config: storage
 * in a temp dir, no auth (the packaged config turns htpasswd on). Waits until `/v2/` answers.
 */
export async function startRegistry(options: { address?: string } = {}): Promise<TestRegistry> {
  // The free port is found before the registry binds it; another test process may take it meanwhile.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRegistryOnce(options);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof RegistryExitedError)) throw error;
    }
  }
}

class RegistryExitedError extends Error {}

async function startRegistryOnce(options: { address?: string }): Promise<TestRegistry> {
  const address = options.address ?? "127.0.0.1";
  const dir = await mkdtemp(join(tmpdir(), "stasis-registry-"));
  const storageDir = join(dir, "storage");
  const port = await freePort();
  const config = [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${storageDir}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${address}:${port}`,
    "  secret: stasis-test-registry",
    "",
  ].join("\n");
  await writeFile(join(dir, "config.yml"), config);
  const child = spawn("/usr/bin/docker-registry", ["serve", join(dir, "config.yml")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://${address}:${port}`;

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new RegistryExitedError(`docker-registry exited with ${child.exitCode}: ${stderr}`);
    }
    const ok = await fetch(`${url}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on ${url} within 15 s: ${stderr}`);
    }
    await sleep(50);
  }
  return { url, host: `${address}:${port}`, storageDir, stop };
}
