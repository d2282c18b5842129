import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import { createLayoutImageStore, openImageStore } from "../builder/index.ts";
import { createBuildSlots } from "./build-slots.ts";
import type { GithubAppConfig } from "./config.ts";
import { createDeliveryLog } from "./delivery-log.ts";
import { createGithubClient } from "./github-client.ts";
import { createEventHandler } from "./handle-event.ts";
import { createRepoLinks } from "./repo-links.ts";
import { createStasisAdmin } from "./stasis-admin.ts";
import { createWebhookServer, WEBHOOK_PATH } from "./webhook-server.ts";

export interface StartGithubAppOptions {
  config: GithubAppConfig;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  log?: Logger;
}

export interface GithubAppServer {
  /** Base URL; webhooks go to `${url}/api/github/webhooks`. */
  url: string;
  webhookUrl: string;
  /** Resolves when every accepted delivery, builds included, has been handled. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** Wires the App together and listens. Only this function (and the CLI) calls `listen`. */
export async function startGithubApp(options: StartGithubAppOptions): Promise<GithubAppServer> {
  const { config } = options;
  const log = options.log ?? pino({ level: "info", redact: { paths: ["*.token", "*.authorization", "token"], censor: "[redacted]" } });
  await mkdir(join(config.stateDir, "work"), { recursive: true });
  const github = createGithubClient(config);
  const slots = createBuildSlots({ concurrency: config.buildConcurrency, timeoutMs: config.buildTimeoutMs });
  const handle = createEventHandler({
    config,
    tokens: github.tokens,
    admin: createStasisAdmin({ apiUrl: config.stasisApiUrl, adminToken: config.adminToken }),
    slots,
    links: await createRepoLinks(join(config.stateDir, "links.json")),
    // openImageStore takes a full reference; its tag is unused, since every push names its own `<env>-<version>` tag.
    storeFor: (project) => (config.registry ? openImageStore(`${config.registry}/${project}:latest`) : createLayoutImageStore(join(config.stateDir, "images", project))),
    log,
  });
  const server = createWebhookServer({ verify: github.verify, deliveries: await createDeliveryLog(join(config.stateDir, "deliveries.log")), handle, log });
  const host = options.host ?? "127.0.0.1";
  await server.app.listen({ host, port: options.port ?? 0 });
  const address = server.app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    url,
    webhookUrl: `${url}${WEBHOOK_PATH}`,
    idle: server.idle,
    async close() {
      await server.app.close();
      await server.idle();
    },
  };
}
