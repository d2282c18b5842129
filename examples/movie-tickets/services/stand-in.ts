import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ServiceCall {
  path: string;
  body: any;
}

export interface StandInServices {
  url: string;
  /** Every call, in order: what a test (or you) can check the run did. */
  calls: ServiceCall[];
  /** Make the email service answer 503 from now on. */
  failEmails(fail: boolean): void;
  close(): Promise<void>;
}

/** Local stand-ins for the booking, payment and email services the example talks to. */
export async function startStandInServices(port = 0): Promise<StandInServices> {
  const calls: ServiceCall[] = [];
  let emailsFail = false;
  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      const path = req.url ?? "/";
      const body = text ? JSON.parse(text) : {};
      calls.push({ path, body });
      const send = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/json", connection: "close" });
        res.end(JSON.stringify(value));
      };
      if (path === "/reservations") return send(201, { id: `res_${randomUUID().slice(0, 8)}`, total: 12.5 * (body.seats?.length ?? 1) });
      if (path === "/payments") return send(201, { id: `pay_${randomUUID().slice(0, 8)}` });
      if (path === "/tickets") return send(201, { id: `tkt_${randomUUID().slice(0, 8)}` });
      if (path === "/emails") return emailsFail ? send(503, { error: "email service unavailable" }) : send(202, { queued: true });
      if (/^\/reservations\/[^/]+\/release$/.test(path)) return send(200, { released: true });
      if (/^\/payments\/[^/]+\/refund$/.test(path)) return send(200, { refunded: true });
      send(404, { error: `no route ${path}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    calls,
    failEmails: (fail) => (emailsFail = fail),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
