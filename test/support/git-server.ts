// Git's smart HTTP protocol for tests: `git http-backend` (the CGI program git ships) behind a tiny
// node HTTP server, with HTTP Basic auth checked by the caller's `authorize`.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface GitServer {
  /** `http://127.0.0.1:PORT`; a repository is `${url}/<owner>/<name>.git` under `root`. */
  url: string;
  /** Requests refused for bad credentials. */
  refused: number;
  close(): Promise<void>;
}

export async function startGitServer(options: { root: string; authorize(username: string, password: string): boolean }): Promise<GitServer> {
  const self = { url: "", refused: 0, close: async () => {} };
  const server = createServer((request, response) => {
    const [scheme, encoded] = (request.headers.authorization ?? "").split(" ");
    const [username, ...rest] = scheme?.toLowerCase() === "basic" && encoded ? Buffer.from(encoded, "base64").toString().split(":") : [""];
    if (!options.authorize(username, rest.join(":"))) {
      self.refused++;
      return void response.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end("authentication required\n");
    }
    const url = new URL(request.url ?? "/", "http://x");
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: options.root,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: request.method ?? "GET",
        CONTENT_TYPE: request.headers["content-type"] ?? "",
        REMOTE_USER: username,
        REMOTE_ADDR: request.socket.remoteAddress ?? "127.0.0.1",
        ...(request.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: String(request.headers["content-encoding"]) } : {}),
        ...(request.headers["git-protocol"] ? { GIT_PROTOCOL: String(request.headers["git-protocol"]) } : {}),
      },
    });
    request.pipe(cgi.stdin);
    const out: Buffer[] = [];
    cgi.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    cgi.on("close", () => {
      const all = Buffer.concat(out);
      const split = all.indexOf("\r\n\r\n") >= 0 ? all.indexOf("\r\n\r\n") : all.indexOf("\n\n");
      const gap = all.indexOf("\r\n\r\n") >= 0 ? 4 : 2;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of all.subarray(0, Math.max(split, 0)).toString().split(/\r?\n/)) {
        const at = line.indexOf(":");
        if (at < 0) continue;
        const name = line.slice(0, at).trim();
        const value = line.slice(at + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      response.writeHead(status, headers).end(split >= 0 ? all.subarray(split + gap) : all);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  self.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  self.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return self;
}
