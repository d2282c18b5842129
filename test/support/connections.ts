// A Stasis server listening on a real port (the provider redirects browsers to its callback) next to
// a local OpenID Provider, on a fresh database.
import { createServer as createNetServer } from "node:net";
import type { AddressInfo } from "node:net";
import { createKeyring, createServer, ensureProject, parseMasterKey, type CreateServerOptions, type StasisServer } from "../../server/index.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";
import { startTestProvider, type TestProvider } from "./oidc-provider.ts";
import { ADMIN_TOKEN, RUNNER_TOKEN, TEST_MASTER_KEY } from "./server-fixture.ts";

export interface ConnectionsStack {
  database: TestDatabase;
  server: StasisServer;
  /** A second replica on the same database (not listening; driven with inject). */
  replica: StasisServer;
  url: string;
  keys: Record<string, string>;
  idp: TestProvider;
  call(method: string, path: string, options?: { key?: string; body?: unknown; via?: StasisServer }): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export async function startConnectionsStack(options: { accessTokenTtlSeconds: number; dashboardDist?: string; engine?: CreateServerOptions["engine"] }): Promise<ConnectionsStack> {
  const database = await createTestDatabase();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const keyring = createKeyring(parseMasterKey(TEST_MASTER_KEY));
  const common = { db: database.db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, publicUrl: url, logger: false as const, keyring, dashboardDist: options.dashboardDist, engine: options.engine };
  const server = await createServer(common);
  await server.app.listen({ port, host: "127.0.0.1" });
  const replica = await createServer(common);
  const project = await ensureProject(database.db, { slug: "demo" });
  const keys = Object.fromEntries(project.keys.map((k) => [k.environment, k.apiKey]));
  const idp = await startTestProvider({ redirectUris: [`${url}/api/v1/connect/callback`], accessTokenTtlSeconds: options.accessTokenTtlSeconds });
  return {
    database,
    server,
    replica,
    url,
    keys,
    idp,
    async call(method, path, o = {}) {
      const response = await (o.via ?? server).app.inject({
        method: method as "GET",
        url: path,
        headers: { authorization: `Bearer ${o.key ?? keys.production}` },
        ...(o.body !== undefined ? { payload: o.body as object } : {}),
      });
      return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : null };
    },
    async stop() {
      await idp.close();
      await replica.close();
      await server.close();
      await database.drop();
    },
  };
}
