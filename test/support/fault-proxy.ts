// An HTTP proxy between runners and the server that a test can break on purpose: the server looks
// down (connections cut), answers 500 like a server whose database is gone, or applies a call and
// loses its answer on the way back. Everything else passes through unchanged.
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Fault =
  /** The connection is cut before the server sees the request ("fetch failed"). */
  | "down"
  /** The server answers 500 `internal error`, as it does while its PostgreSQL is unreachable. */
  | "error500"
  /** The server gets and applies the request; its answer is lost (the connection is cut). */
  | "lose-answer"
  /** The request reaches the server 1.5 s late (a slow network or a loaded machine); then it passes. */
  | "delay";

const DELAY_MS = 1500;

interface Rule {
  path: RegExp;
  fault: Fault;
  /** How many matching requests to break; Infinity until cleared. */
  left: number;
}

export interface FaultProxy {
  url: string;
  /** Break requests whose path matches (`times` of them, default: until `clear`). "down" also cuts matching requests in flight (a long poll). */
  fail(path: RegExp, fault: Fault, times?: number): void;
  /** Drops every rule and the record of broken requests. */
  clear(): void;
  /** Paths of requests that were broken, in order, with the fault. */
  readonly broken: Array<{ path: string; fault: Fault }>;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  let rules: Rule[] = [];
  const broken: Array<{ path: string; fault: Fault }> = [];
  const inFlight = new Set<IncomingMessage>();

  function ruleFor(path: string): Rule | undefined {
    const rule = rules.find((r) => r.left > 0 && r.path.test(path));
    if (rule) rule.left -= 1;
    return rule;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? "/";
    inFlight.add(req);
    res.once("close", () => inFlight.delete(req));
    const rule = ruleFor(path);
    if (rule) broken.push({ path, fault: rule.fault });
    if (rule?.fault === "down") return void req.socket.destroy();
    if (rule?.fault === "delay") {
      req.pause();
      return void setTimeout(() => forward(req, res, path, undefined), DELAY_MS);
    }
    if (rule?.fault === "error500") {
      req.resume();
      res.writeHead(500, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ error: { code: "INTERNAL", message: "internal error" } }));
    }
    forward(req, res, path, rule);
  }

  function forward(req: IncomingMessage, res: ServerResponse, path: string, rule: Rule | undefined): void {
    if (req.socket.destroyed) return;
    const forwarded = request({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers: { ...req.headers, host: upstream.host } }, (answer) => {
      if (rule?.fault === "lose-answer") {
        answer.resume();
        answer.once("end", () => req.socket.destroy());
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forwarded.on("error", () => req.socket.destroy());
    res.on("close", () => forwarded.destroy());
    req.pipe(forwarded);
  }

  const server = createServer(handle);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    fail(path, fault, times = Infinity) {
      rules.push({ path, fault, left: times });
      if (fault === "down") for (const req of inFlight) if (path.test(req.url ?? "/")) req.socket.destroy();
    },
    clear() {
      rules = [];
      broken.length = 0;
    },
    broken,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
