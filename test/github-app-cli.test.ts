// `stasis github-app` as a user starts it: config from the environment (the private key as a file
// path), one JSON line with the URL, webhooks at /api/github/webhooks, bad signatures refused.
import { spawn } from "node:child_process";
import { createHmac, generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, expect, it } from "vitest";

const BIN = resolve(import.meta.dirname, "..", "cli", "bin.mjs");
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

it("stasis github-app --json prints {url} and refuses unsigned and mis-signed webhooks with 401", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stasis-app-cli-"));
  dirs.push(dir);
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
  await writeFile(join(dir, "app.pem"), privateKey);
  const secret = "cli-test-secret";
  const child = spawn(process.execPath, [BIN, "github-app", "--json", "--port", "0"], {
    env: {
      PATH: process.env.PATH,
      GITHUB_APP_ID: "77",
      GITHUB_APP_PRIVATE_KEY: join(dir, "app.pem"),
      GITHUB_WEBHOOK_SECRET: secret,
      STASIS_API_URL: "http://127.0.0.1:9",
      STASIS_ADMIN_TOKEN: "admin-token-0123456789abcdef",
      STASIS_GITHUB_APP_STATE_DIR: join(dir, "state"),
      STASIS_LOG_LEVEL: "silent",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const line = await new Promise<string>((resolveLine, reject) => {
      createInterface({ input: child.stdout }).once("line", resolveLine);
      child.once("exit", (code) => reject(new Error(`exited with ${code}: ${stderr}`)));
    });
    const { url } = JSON.parse(line) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const body = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 });
    const post = (signature?: string) =>
      fetch(`${url}/api/github/webhooks`, { method: "POST", headers: { "content-type": "application/json", "x-github-event": "ping", "x-github-delivery": "d-1", ...(signature ? { "x-hub-signature-256": signature } : {}) }, body });
    expect((await post()).status).toBe(401);
    const wrong = await post(`sha256=${createHmac("sha256", "other").update(body).digest("hex")}`);
    expect(wrong.status).toBe(401);
    expect((await wrong.json()).error.message).not.toContain(secret);
    expect((await post(`sha256=${createHmac("sha256", secret).update(body).digest("hex")}`)).status).toBe(202);
    expect(stderr).not.toContain(secret);
  } finally {
    // Gone before the dir is removed: a process still writing to its state dir (the accepted delivery) made rm fail
    // with ENOTEMPTY in a CI run.
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolveExit) => child.once("exit", resolveExit));
    child.kill("SIGTERM");
    await exited;
  }
});
