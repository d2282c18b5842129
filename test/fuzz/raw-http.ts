// What app.inject cannot send: bytes on a real socket — bad UTF-8, lying Content-Length, chunked
// bodies past the limit, broken chunking, oversized headers, request smuggling shapes.
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { ApiErrorBody, MAX_PAYLOAD_BYTES } from "../../schemas/index.ts";
import { changedTables, createSnapshotter } from "./db-snapshot.ts";
import type { FuzzStack } from "./fuzz-stack.ts";

export interface RawCase {
  name: string;
  /** Bytes to write; a function gets the credentials. */
  bytes: (stack: FuzzStack) => Buffer | Buffer[];
  /** End our side after writing (a half-close), so a server waiting for more body sees EOF. */
  endAfterWrite?: boolean;
}

export interface RawResult {
  name: string;
  statuses: number[];
  /** Error codes of the answers, for the log. */
  codes: string[];
  problems: string[];
}

const crlf = "\r\n";
const head = (lines: string[]) => Buffer.from(lines.join(crlf) + crlf + crlf, "latin1");
const jsonPost = (path: string, key: string, body: Buffer, extra: string[] = []) =>
  Buffer.concat([head([`POST ${path} HTTP/1.1`, "Host: fuzz", `Authorization: Bearer ${key}`, "Content-Type: application/json", `Content-Length: ${body.length}`, ...extra]), body]);

function chunked(path: string, key: string, total: number, chunkSize = 64 * 1024): Buffer[] {
  const out: Buffer[] = [head([`POST ${path} HTTP/1.1`, "Host: fuzz", `Authorization: Bearer ${key}`, "Content-Type: application/json", "Transfer-Encoding: chunked"])];
  const chunk = Buffer.alloc(chunkSize, "x");
  const opening = '{"payload":"';
  out.push(Buffer.from(`${opening.length.toString(16)}\r\n${opening}\r\n`));
  for (let sent = 0; sent < total; sent += chunkSize) out.push(Buffer.concat([Buffer.from(`${chunkSize.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]));
  out.push(Buffer.from(`2\r\n"}\r\n0\r\n\r\n`));
  return out;
}

export const RAW_CASES: RawCase[] = [
  { name: "bad UTF-8 bytes in a JSON string", bytes: (s) => jsonPost("/api/v1/tasks/hello/trigger", s.credentials.env, Buffer.concat([Buffer.from('{"payload":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0xe2, 0x82]), Buffer.from('"}')])) },
  { name: "bad UTF-8 bytes as a JSON key", bytes: (s) => jsonPost("/api/v1/events", s.credentials.env, Buffer.concat([Buffer.from('{"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('":1,"event":"e","payload":1}')])) },
  { name: "bad UTF-8 bytes outside any string", bytes: (s) => jsonPost("/api/v1/tasks/hello/trigger", s.credentials.env, Buffer.concat([Buffer.from('{"payload":'), Buffer.from([0xff, 0xff]), Buffer.from("}")])) },
  { name: "a UTF-16 body that says it is UTF-8", bytes: (s) => jsonPost("/api/v1/tasks/hello/trigger", s.credentials.env, Buffer.from('{"payload":1}', "utf16le")) },
  { name: "bad UTF-8 in the path", bytes: () => Buffer.concat([Buffer.from("GET /api/v1/runs/"), Buffer.from([0xff, 0xc0]), Buffer.from(" HTTP/1.1\r\nHost: fuzz\r\n\r\n")]) },
  { name: "bad UTF-8 in the Authorization header", bytes: () => Buffer.concat([Buffer.from("GET /api/v1/whoami HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer sk_"), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from("\r\n\r\n")]) },
  { name: "a NUL byte in a header", bytes: () => Buffer.from("GET /api/v1/whoami HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer a\u0000b\r\n\r\n", "latin1") },
  { name: "Content-Length longer than the body, then EOF", endAfterWrite: true, bytes: (s) => Buffer.concat([head(["POST /api/v1/tasks/hello/trigger HTTP/1.1", "Host: fuzz", `Authorization: Bearer ${s.credentials.env}`, "Content-Type: application/json", "Content-Length: 1000"]), Buffer.from('{"payload":1}')]) },
  { name: "Content-Length shorter than the body", bytes: (s) => Buffer.concat([head(["POST /api/v1/tasks/hello/trigger HTTP/1.1", "Host: fuzz", `Authorization: Bearer ${s.credentials.env}`, "Content-Type: application/json", "Content-Length: 5"]), Buffer.from('{"payload":{"a":1}}')]) },
  { name: "Content-Length that is not a number", bytes: (s) => Buffer.concat([head(["POST /api/v1/tasks/hello/trigger HTTP/1.1", "Host: fuzz", `Authorization: Bearer ${s.credentials.env}`, "Content-Type: application/json", "Content-Length: 12abc"]), Buffer.from('{"payload":1}')]) },
  { name: "two different Content-Lengths", bytes: (s) => Buffer.concat([head(["POST /api/v1/tasks/hello/trigger HTTP/1.1", "Host: fuzz", `Authorization: Bearer ${s.credentials.env}`, "Content-Type: application/json", "Content-Length: 13", "Content-Length: 5"]), Buffer.from('{"payload":1}')]) },
  { name: "Content-Length and chunked together (smuggling)", bytes: (s) => Buffer.concat([head(["POST /api/v1/tasks/hello/trigger HTTP/1.1", "Host: fuzz", `Authorization: Bearer ${s.credentials.env}`, "Content-Type: application/json", "Content-Length: 13", "Transfer-Encoding: chunked"]), Buffer.from('d\r\n{"payload":1}\r\n0\r\n\r\n')]) },
  { name: "a chunked body past the body limit", bytes: (s) => chunked("/api/v1/tasks/hello/trigger", s.credentials.env, MAX_PAYLOAD_BYTES + 512 * 1024) },
  { name: "a chunked body between the payload limit and the body limit", bytes: (s) => chunked("/api/v1/tasks/hello/trigger", s.credentials.env, MAX_PAYLOAD_BYTES + 16 * 1024) },
  { name: "a chunk size that is not hex", bytes: (s) => Buffer.concat([head(["POST /api/v1/tasks/hello/trigger HTTP/1.1", "Host: fuzz", `Authorization: Bearer ${s.credentials.env}`, "Content-Type: application/json", "Transfer-Encoding: chunked"]), Buffer.from("zz\r\n{}\r\n0\r\n\r\n")]) },
  { name: "a body past the body limit with Content-Length", bytes: (s) => jsonPost("/api/v1/events", s.credentials.env, Buffer.concat([Buffer.from('{"event":"e","payload":"'), Buffer.alloc(4 * 1024 * 1024, "y"), Buffer.from('"}')])) },
  { name: "10,000 levels of [", bytes: (s) => jsonPost("/api/v1/tasks/hello/trigger", s.credentials.env, Buffer.from(`{"payload":${"[".repeat(10_000)}${"]".repeat(10_000)}}`)) },
  { name: "10,000 unclosed [", bytes: (s) => jsonPost("/api/v1/runner/register", s.credentials.runner, Buffer.from("[".repeat(10_000))) },
  { name: "headers past 16 KiB", bytes: () => head(["GET /api/v1/whoami HTTP/1.1", "Host: fuzz", `X-Big: ${"h".repeat(20_000)}`]) },
  { name: "an unknown method", bytes: () => head(["BREW /api/v1/runs HTTP/1.1", "Host: fuzz"]) },
  { name: "a request line with spaces in the path", bytes: () => head(["GET /api/v1/runs/a b c HTTP/1.1", "Host: fuzz"]) },
  { name: "HTTP/1.0 without Host", bytes: () => head(["GET /api/v1/whoami HTTP/1.0"]) },
  { name: "HTTP/2 preface on an HTTP/1.1 port", bytes: () => Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") },
  { name: "garbage bytes", bytes: () => Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]) },
  { name: "a body on a GET", bytes: (s) => Buffer.concat([head(["GET /api/v1/runs HTTP/1.1", "Host: fuzz", `Authorization: Bearer ${s.credentials.env}`, "Content-Type: application/json", "Content-Length: 10"]), Buffer.from("{{{{{{{{{{")]) },
  { name: "a form body to a request-wait URL with bad bytes", bytes: (s) => Buffer.concat([head(["POST /api/v1/waitpoints/requests/no-such-token HTTP/1.1", "Host: fuzz", "Content-Type: text/plain", "Content-Length: 4"]), Buffer.from([0x00, 0xff, 0xfe, 0x00])]) },
];

interface Parsed {
  status: number;
  body: string;
}

/** Splits what came back into responses (Content-Length or chunked bodies). */
export function parseResponses(data: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let rest: Buffer = data;
  while (rest.length) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) break;
    const headText = rest.subarray(0, end).toString("latin1");
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(headText);
    if (!status) break;
    rest = rest.subarray(end + 4);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
    let body: Buffer = Buffer.alloc(0);
    if (length) {
      body = rest.subarray(0, Number(length[1]));
      rest = rest.subarray(Number(length[1]));
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(headText)) {
      const parts: Buffer[] = [];
      for (;;) {
        const line = rest.indexOf("\r\n");
        const size = parseInt(rest.subarray(0, line).toString(), 16);
        rest = rest.subarray(line + 2);
        if (!size) {
          rest = rest.subarray(2);
          break;
        }
        parts.push(rest.subarray(0, size));
        rest = rest.subarray(size + 2);
      }
      body = Buffer.concat(parts);
    }
    out.push({ status: Number(status[1]), body: body.toString("utf8") });
  }
  return out;
}

function exchange(port: number, bytes: Buffer[], endAfterWrite: boolean, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on("data", (d) => chunks.push(d));
    socket.on("close", done);
    socket.on("error", () => {});
    socket.on("connect", async () => {
      for (const b of bytes) if (!socket.write(b)) await new Promise((r) => socket.once("drain", r));
      if (endAfterWrite) socket.end();
      else setTimeout(() => socket.end(), 300);
    });
  });
}

/** Sends every raw case over a real socket; each must answer < 500, in ApiErrorBody when 4xx, changing no row when refused. */
export async function fuzzRawHttp(stack: FuzzStack): Promise<RawResult[]> {
  const address = await stack.server.app.listen({ port: 0, host: "127.0.0.1" });
  const port = Number(new URL(address).port || (stack.server.app.server.address() as AddressInfo).port);
  const snapshot = await createSnapshotter(stack.db);
  const results: RawResult[] = [];
  for (const c of RAW_CASES) {
    const before = await snapshot();
    const raw = [c.bytes(stack)].flat();
    const responses = parseResponses(await exchange(port, raw, c.endAfterWrite ?? false));
    const after = await snapshot();
    const problems: string[] = [];
    for (const r of responses) {
      if (r.status >= 500) problems.push(`status ${r.status}: ${r.body.slice(0, 300)}`);
      if (r.status >= 400 && r.status < 500) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(r.body);
        } catch {
          parsed = undefined;
        }
        if (!ApiErrorBody.safeParse(parsed).success) problems.push(`a ${r.status} whose body is not ApiErrorBody: ${r.body.slice(0, 300)}`);
      }
    }
    const refused = responses.length === 0 || responses.every((r) => r.status >= 400);
    const changed = refused ? changedTables(before, after) : [];
    if (changed.length) problems.push(`a refused request changed rows in: ${changed.join(", ")}`);
    const codes = responses.map((r) => /"code":"([A-Z_]+)"/.exec(r.body)?.[1] ?? "-");
    results.push({ name: c.name, statuses: responses.map((r) => r.status), codes, problems });
  }
  // The server still serves after all of it.
  const health = parseResponses(await exchange(port, [head(["GET /healthz HTTP/1.1", "Host: fuzz", "Connection: close"])], false));
  if (health[0]?.status !== 200) results.push({ name: "healthz after the raw cases", statuses: health.map((h) => h.status), codes: [], problems: ["the server no longer answers /healthz"] });
  return results;
}
