import Fastify, { type FastifyInstance } from "fastify";
import { serializerCompiler } from "fastify-type-provider-zod";
import type { Knex } from "knex";
import pino, { type LoggerOptions } from "pino";
import { MAX_PAYLOAD_BYTES } from "../schemas/index.ts";
import { DEFAULT_ENGINE_CONFIG, systemClock, type Clock, type Engine, type EngineConfig } from "./engine/context.ts";
import { createListener } from "./engine/notify.ts";
import { createScheduler, type Scheduler } from "./engine/scheduler.ts";
import { installAuth } from "./http/auth-hook.ts";
import { storableValidatorCompiler } from "./http/validator.ts";
import { clientErrorHandler, frameworkErrorHandler, installErrorHandler, MAX_PATH_PARAMETER_LENGTH } from "./http/error-handler.ts";
import { adminRoutes } from "./routes/admin.ts";
import { adminDeployTokenRoutes } from "./routes/admin-deploy-tokens.ts";
import { adminCheckpointRoutes } from "./routes/admin-checkpoints.ts";
import { deploymentRoutes } from "./routes/deployments.ts";
import { runRoutes } from "./routes/runs.ts";
import { bulkRunRoutes } from "./routes/runs-bulk.ts";
import { runnerRoutes } from "./routes/runner.ts";
import { waitRoutes } from "./routes/waits.ts";
import { oidcRoutes } from "./oidc/index.ts";
import { adminEnvVarRoutes } from "./routes/envvars-admin.ts";
import { envVarRoutes } from "./routes/envvars.ts";
import { scheduleRoutes } from "./routes/schedules.ts";
import { webhookRoutes } from "./routes/webhooks.ts";
import { checkEncryptionKeys } from "./secrets/check-keys.ts";
import type { Keyring } from "./secrets/keyring.ts";
import { createRunRedaction } from "./secrets/run-redactor.ts";
import { dashboardRoutes, DEFAULT_SESSION_TTL_MS, installCookies } from "./dashboard/index.ts";
import { runTimelineRoutes } from "./routes/run-timeline.ts";
import { deploymentCopyRoutes } from "./routes/deployment-copy.ts";
import { taskRoutes } from "./routes/tasks.ts";
import { connectionRoutes, runnerConnectionRoutes } from "./routes/connections.ts";

export interface CreateServerOptions {
  db: Knex;
  adminToken: string;
  runnerToken: string;
  /** Base URL that `wait.forRequest` URLs point at. */
  publicUrl?: string;
  logger?: LoggerOptions | false;
  /** Handed to runners in the register response; waits shorter than this stay in-process (the runner decides). */
  suspendThresholdMs?: number;
  /** Engine knobs (lease length, TTLs); tests shorten them. */
  engine?: Partial<EngineConfig>;
  /**
   * Master key(s) for environment variables (`keyringFromEnv()` reads STASIS_ENCRYPTION_KEY and
   * STASIS_ENCRYPTION_KEY_PREVIOUS). Without one, variables are refused — and the server refuses to
   * start when the database already holds encrypted rows.
   */
  keyring?: Keyring | null;
  /** The clock cron schedules tick by (tests pass a fake one and call `scheduler.tick()`). */
  clock?: Clock;
  /** How long a dashboard session lasts (default 12 h). */
  sessionTtlMs?: number;
  /** Where the built dashboard is (default dist/dashboard); tests may point elsewhere. */
  dashboardDist?: string;
}

/** One route as declared: what the fuzzer (test/fuzz) and docs can enumerate without a hand-kept list. */
export interface RouteInfo {
  methods: string[];
  url: string;
  /** `config.auth`; undefined means the auth hook's default (admin). */
  auth?: string;
  schema?: { params?: unknown; querystring?: unknown; body?: unknown };
}

export interface StasisServer {
  app: FastifyInstance;
  /** Every route the app registered, in order (HEAD routes fastify adds for GETs left out). */
  routes: readonly RouteInfo[];
  engine: Engine;
  scheduler: Scheduler;
  close(): Promise<void>;
}

const CLOSE_GRACE_MS = 1000;

const REDACT = ["req.headers.authorization", "headers.authorization", "*.apiKey", "*.token", "apiKey", "token"];

// Request-wait URLs and Connect links carry their secret in the path, the OAuth callback its code and state in the query: log them masked.
function serializeRequest(req: { method?: string; url?: string; ip?: string }) {
  const url = req.url
    ?.replace(/(\/api\/v1\/waitpoints\/requests\/)[^/?]+/, "$1[redacted]")
    .replace(/(\/api\/v1\/connect\/links\/)[^/?]+/, "$1[redacted]")
    .replace(/(\/api\/v1\/connect\/callback)\?.*/, "$1?[redacted]");
  return { method: req.method, url, remoteAddress: req.ip };
}

/** Builds the app and starts the scheduler; only the CLI calls `listen`. */
export async function createServer(options: CreateServerOptions): Promise<StasisServer> {
  if (options.adminToken.length < 16 || options.runnerToken.length < 16) throw new Error("adminToken and runnerToken must be at least 16 characters");
  const logger = pino(
    options.logger === false || options.logger === undefined
      ? { level: "silent" }
      : { ...options.logger, redact: { paths: REDACT, censor: "[redacted]" }, serializers: { req: serializeRequest, ...options.logger.serializers } },
  );
  const app = Fastify({
    loggerInstance: logger,
    // Payloads are limited to MAX_PAYLOAD_BYTES; the body may carry a little more around them.
    bodyLimit: MAX_PAYLOAD_BYTES + 64 * 1024,
    routerOptions: { maxParamLength: MAX_PATH_PARAMETER_LENGTH },
    // Errors raised before a route runs answer in ApiErrorBody too.
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(storableValidatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const config: EngineConfig = {
    ...DEFAULT_ENGINE_CONFIG,
    ...(options.publicUrl ? { publicUrl: options.publicUrl.replace(/\/$/, "") } : {}),
    ...(options.suspendThresholdMs !== undefined ? { suspendThresholdMs: options.suspendThresholdMs } : {}),
    ...options.engine,
  };
  await checkEncryptionKeys(options.db, options.keyring ?? null);
  const listener = await createListener(options.db, logger);
  const keyring = options.keyring ?? null;
  const engine: Engine = { db: options.db, config, listener, logger, keyring, clock: options.clock ?? systemClock, redactorFor: createRunRedaction(options.db, keyring) };

  const routes: RouteInfo[] = [];
  app.addHook("onRoute", (route) => {
    if ((route.config as { unlisted?: boolean } | undefined)?.unlisted) return;
    const methods = [route.method].flat().map(String);
    if (methods.length === 1 && methods[0] === "HEAD" && routes.some((r) => r.url === route.url && r.methods.includes("GET"))) return;
    const s = route.schema as RouteInfo["schema"] | undefined;
    routes.push({ methods, url: route.url, auth: (route.config as { auth?: string } | undefined)?.auth, schema: s && { params: s.params, querystring: s.querystring, body: s.body } });
  });
  installErrorHandler(app);
  await installCookies(app);
  installAuth(app, { db: options.db, adminToken: options.adminToken, runnerToken: options.runnerToken });
  // Liveness: the process answers (a database outage is not cured by restarting every replica).
  app.get("/livez", { config: { auth: "none" } }, async () => ({ ok: true }));
  app.get("/healthz", { config: { auth: "none" } }, async () => {
    await options.db.raw("SELECT 1");
    return { ok: true };
  });
  await app.register(async (scope) => {
    await runRoutes(scope, engine);
    await bulkRunRoutes(scope, engine);
    await deploymentRoutes(scope, engine);
    await adminRoutes(scope, engine);
    await adminDeployTokenRoutes(scope, engine);
    await adminCheckpointRoutes(scope, engine);
    await runnerRoutes(scope, engine);
    await waitRoutes(scope, engine);
    await oidcRoutes(scope, engine);
    await envVarRoutes(scope, engine);
    await adminEnvVarRoutes(scope, engine);
    await webhookRoutes(scope, engine);
    await scheduleRoutes(scope, engine);
    await runTimelineRoutes(scope, engine);
    await deploymentCopyRoutes(scope, engine);
    await taskRoutes(scope, engine);
    await connectionRoutes(scope, engine);
    await runnerConnectionRoutes(scope, engine);
    await dashboardRoutes(scope, engine, { adminToken: options.adminToken, sessionTtlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS, publicUrl: config.publicUrl, dist: options.dashboardDist });
  });
  await app.ready();
  const scheduler = createScheduler(engine);

  return {
    app,
    routes,
    engine,
    scheduler,
    async close() {
      await scheduler.stop();
      await listener.close();
      // In-flight requests get a moment; then sockets a client left half-open (an aborted long-poll)
      // are cut, or close would wait for the 72 s keep-alive timeout.
      const force = setTimeout(() => app.server.closeAllConnections?.(), CLOSE_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
    },
  };
}
