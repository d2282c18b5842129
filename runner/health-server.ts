import { createServer, type Server } from "node:http";

export interface HealthServerOptions {
  port: number;
  host?: string;
  /** Registered and claiming: not before the runner has registered, not once it drains. */
  ready(): boolean;
  /** `GET /drain` (a Kubernetes preStop hook): begin the drain now, before the SIGTERM. */
  onDrain?(): void;
}

/**
 * The runner's probe endpoints, on their own port (nothing else is served there):
 * `/livez` 200 while the process answers (a server outage is not a reason to restart a runner
 * that holds runs), `/readyz` 200 when registered and not draining, else 503, and `/drain`.
 */
export async function startHealthServer(o: HealthServerOptions): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: Record<string, unknown>) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, { error: "GET only" });
    if (path === "/livez") return send(200, { ok: true });
    if (path === "/readyz") return o.ready() ? send(200, { ready: true }) : send(503, { ready: false });
    if (path === "/drain" && o.onDrain) {
      o.onDrain();
      return send(202, { draining: true });
    }
    send(404, { error: "not found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host ?? "0.0.0.0", () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === "object" && address ? address.port : o.port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
