import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postJson } from "./http-post.ts";

let server: http.Server;
let base: URL;
const ports: number[] = [];
beforeAll(async () => {
  server = http.createServer((req, res) => {
    ports.push(req.socket.remotePort!);
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.url === "/slow") return; // never answers: the caller's signal ends it
      res.writeHead(req.url === "/fail" ? 503 : 200, { "content-type": "application/json" });
      res.end(JSON.stringify({ got: JSON.parse(body), auth: req.headers.authorization, type: req.headers["content-type"] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("postJson (the runner's calls to the server)", () => {
  it("sends the JSON body and headers, answers status and text, and reuses one kept-alive connection", async () => {
    const one = await postJson(new URL("/a", base), { authorization: "Bearer t" }, JSON.stringify({ n: 1, s: "ü" }), AbortSignal.timeout(5000));
    const two = await postJson(new URL("/b", base), { authorization: "Bearer t" }, JSON.stringify({ n: 2 }), AbortSignal.timeout(5000));
    expect(one.status).toBe(200);
    expect(JSON.parse(one.text)).toEqual({ got: { n: 1, s: "ü" }, auth: "Bearer t", type: "application/json" });
    expect(JSON.parse(two.text).got).toEqual({ n: 2 });
    expect(ports.at(-1)).toBe(ports.at(-2));
  });

  it("hands back an error status with its body (the caller decides)", async () => {
    const answer = await postJson(new URL("/fail", base), {}, "{}", AbortSignal.timeout(5000));
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.text).got).toEqual({});
  });

  it("an aborted signal ends the call with the signal's reason, and the next call still works", async () => {
    const controller = new AbortController();
    const call = postJson(new URL("/slow", base), {}, "{}", controller.signal);
    setTimeout(() => controller.abort(new Error("drain began")), 50);
    await expect(call).rejects.toThrow("drain began");
    await expect(postJson(new URL("/slow", base), {}, "{}", AbortSignal.timeout(100))).rejects.toMatchObject({ name: "TimeoutError" });
    expect((await postJson(new URL("/c", base), {}, "{}", AbortSignal.timeout(5000))).status).toBe(200);
  });
});
