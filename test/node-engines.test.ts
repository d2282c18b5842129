// package.json's `engines.node` is honest: every installed package accepts both ends of the range,
// and the packages pinned to older majors by `overrides` (their newest majors need Node 22) still do
// what their dependents ask of them — run this file under Node 20 and Node 24.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fastifyCookie from "@fastify/cookie";
import fastifyStatic from "@fastify/static";
import { Octokit } from "@octokit/core";
import fastify from "fastify";
import semver from "semver";
import { afterAll, beforeAll, expect, it } from "vitest";
import lock from "../package-lock.json" with { type: "json" };
import pkg from "../package.json" with { type: "json" };

type LockEntry = { version?: string; engines?: { node?: string } | string[]; os?: string[]; cpu?: string[]; optional?: boolean };

it("declares a Node range every installable package accepts at its lowest version and at Node 24", () => {
  const range = pkg.engines.node;
  const lowest = semver.minVersion(range)!.version;
  expect(semver.satisfies("24.0.0", range)).toBe(true);
  const refusing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages as Record<string, LockEntry>)) {
    const wants = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
    if (!path || !wants) continue;
    if (entry.os && !entry.os.includes("linux")) continue; // never installed here
    if (entry.cpu && !entry.cpu.includes("x64") && !entry.cpu.includes("wasm32")) continue;
    for (const node of [lowest, "24.0.0"]) if (!semver.satisfies(node, wants)) refusing.push(`${path}@${entry.version} wants node ${wants}, refuses ${node}`);
  }
  expect(refusing).toEqual([]);
});

it("runs on the Node this test runs on (the lead runs it under 20 and 24)", () => {
  expect(semver.satisfies(process.versions.node, pkg.engines.node)).toBe(true);
});

let dir: string;
let upstream: Server;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stasis-engines-"));
  await writeFile(join(dir, "report.txt"), "hello\n");
  upstream = createServer((req, res) => {
    res.setHeader("content-type", "application/json; charset=utf-8");
    res.end(JSON.stringify({ path: req.url }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
});
afterAll(async () => {
  await new Promise((resolve) => upstream?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

it("@fastify/static sends a download with content-disposition@2", async () => {
  const app = fastify();
  await app.register(fastifyStatic, { root: dir });
  app.get("/download", (_req, reply) => reply.download("report.txt", "monthly report.txt"));
  const res = await app.inject({ method: "GET", url: "/download" });
  expect(res.statusCode).toBe(200);
  expect(res.headers["content-disposition"]).toBe('attachment; filename="monthly report.txt"');
  expect(res.body).toBe("hello\n");
  await app.close();
});

it("@fastify/cookie sets and reads cookies with cookie@1", async () => {
  const app = fastify();
  await app.register(fastifyCookie, { secret: "x".repeat(32) });
  app.get("/set", (_req, reply) => reply.setCookie("session", "a b", { httpOnly: true, path: "/" }).send("ok"));
  app.get("/read", (req) => ({ session: req.cookies.session }));
  const set = await app.inject({ method: "GET", url: "/set" });
  expect(set.headers["set-cookie"]).toBe("session=a%20b; Path=/; HttpOnly; SameSite=Lax");
  const read = await app.inject({ method: "GET", url: "/read", headers: { cookie: "session=a%20b" } });
  expect(read.json()).toEqual({ session: "a b" });
  await app.close();
});

it("@octokit/request parses a JSON response's content type with content-type@2", async () => {
  const { port } = upstream.address() as AddressInfo;
  const octokit = new Octokit({ baseUrl: `http://127.0.0.1:${port}` });
  const res = await octokit.request("GET /repos/{owner}/{repo}", { owner: "acme", repo: "shop" });
  expect(res.data).toEqual({ path: "/repos/acme/shop" });
});
