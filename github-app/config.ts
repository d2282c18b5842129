import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { ProjectPath } from "../schemas/index.ts";

export interface GithubAppConfig {
  appId: string;
  privateKey: string;
  /** The key's file when GITHUB_APP_PRIVATE_KEY named one: hidden from builds like the state dir. */
  privateKeyFile?: string | null;
  webhookSecret: string;
  /** GitHub's REST API (`https://api.github.com`, a GHES `/api/v3` URL, or a stand-in). */
  apiUrl: string;
  /** Where repositories are cloned from: `<gitUrl>/<owner>/<repo>.git`. */
  gitUrl: string;
  stasisApiUrl: string;
  adminToken: string;
  /** `host[:port][/prefix]`: images go to `<registry>/<project>`. Unset: an OCI layout dir in `stateDir`. */
  registry: string | null;
  /** Delivery ids, repository links and work dirs. */
  stateDir: string;
  buildTimeoutMs: number;
  buildConcurrency: number;
  /** Build pull requests whose head is in a fork (their code would run with the preview's deploy token). */
  allowForkBuilds: boolean;
  /** Extra branches to deploy on push, besides the default branch (→ production): branch → environment. */
  branchEnvironments: Record<string, string>;
  /** Include the Node runtime layer (runc/container runners need it; process-mode runners do not). */
  withRuntime: boolean;
  /** Where the project sits in each repository unless its `.stasis.yml` says `path:` (default `.`). */
  projectPath?: string;
}

const flag = z
  .enum(["1", "0", "true", "false", "yes", "no"], { message: "use 1/0, true/false or yes/no" })
  .transform((v) => v === "1" || v === "true" || v === "yes");

const Env = z.object({
  GITHUB_APP_ID: z.string().regex(/^\d+$/, "the App's numeric id (Settings → Developer settings → GitHub Apps)"),
  GITHUB_APP_PRIVATE_KEY: z.string().min(1, "PEM text or the path of the .pem file"),
  GITHUB_WEBHOOK_SECRET: z.string().min(8, "at least 8 characters"),
  GITHUB_API_URL: z.url().default("https://api.github.com"),
  GITHUB_GIT_URL: z.url().optional(),
  STASIS_API_URL: z.url(),
  STASIS_ADMIN_TOKEN: z.string().min(16, "at least 16 characters"),
  STASIS_REGISTRY: z.string().regex(/^[^/\s]+(\/[a-z0-9._/-]+)?$/, "host[:port][/prefix]").optional(),
  STASIS_GITHUB_APP_STATE_DIR: z.string().default(".stasis/github-app"),
  STASIS_BUILD_TIMEOUT_SECONDS: z.coerce.number().int().min(10).max(6 * 3600).default(900),
  STASIS_BUILD_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  STASIS_ALLOW_FORK_BUILDS: flag.default(false),
  STASIS_BRANCH_ENVIRONMENTS: z
    .string()
    .regex(/^([^=,\s]+=[a-z0-9/-]+)(,[^=,\s]+=[a-z0-9/-]+)*$/, "branch=environment pairs separated by commas, e.g. develop=staging")
    .optional(),
  STASIS_BUILD_WITH_RUNTIME: flag.default(true),
  STASIS_PROJECT_PATH: ProjectPath.default("."),
});

/** Parsed once at start; a bad value names the variable. Empty strings count as unset. */
export function loadGithubAppConfig(env: NodeJS.ProcessEnv = process.env): GithubAppConfig {
  const input = Object.fromEntries(Object.keys(Env.shape).map((k) => [k, env[k] === "" ? undefined : env[k]]));
  const parsed = Env.safeParse(input);
  if (!parsed.success) {
    const describe = (i: z.core.$ZodIssue) => `${String(i.path[0])}: ${i.code === "invalid_type" && input[String(i.path[0])] === undefined ? "is not set" : i.message}`;
    throw new Error(`GitHub App configuration: ${parsed.error.issues.map(describe).join("; ")}`);
  }
  const e = parsed.data;
  return {
    appId: e.GITHUB_APP_ID,
    privateKey: readPrivateKey(e.GITHUB_APP_PRIVATE_KEY),
    privateKeyFile: e.GITHUB_APP_PRIVATE_KEY.includes("-----BEGIN") ? null : resolve(e.GITHUB_APP_PRIVATE_KEY),
    webhookSecret: e.GITHUB_WEBHOOK_SECRET,
    apiUrl: e.GITHUB_API_URL.replace(/\/+$/, ""),
    gitUrl: (e.GITHUB_GIT_URL ?? gitUrlFor(e.GITHUB_API_URL)).replace(/\/+$/, ""),
    stasisApiUrl: e.STASIS_API_URL.replace(/\/+$/, ""),
    adminToken: e.STASIS_ADMIN_TOKEN,
    registry: e.STASIS_REGISTRY?.replace(/\/+$/, "") ?? null,
    stateDir: resolve(e.STASIS_GITHUB_APP_STATE_DIR),
    buildTimeoutMs: e.STASIS_BUILD_TIMEOUT_SECONDS * 1000,
    buildConcurrency: e.STASIS_BUILD_CONCURRENCY,
    allowForkBuilds: e.STASIS_ALLOW_FORK_BUILDS,
    branchEnvironments: Object.fromEntries((e.STASIS_BRANCH_ENVIRONMENTS ?? "").split(",").filter(Boolean).map((pair) => pair.split("=") as [string, string])),
    withRuntime: e.STASIS_BUILD_WITH_RUNTIME,
    projectPath: e.STASIS_PROJECT_PATH,
  };
}

function readPrivateKey(value: string): string {
  const text = value.includes("-----BEGIN") ? value : readKeyFile(value);
  // Keys pasted into one-line env files carry literal "\n".
  return text.replace(/\\n/g, "\n");
}

function readKeyFile(path: string): string {
  if (!existsSync(path)) throw new Error("GitHub App configuration: GITHUB_APP_PRIVATE_KEY is neither PEM text nor the path of an existing file");
  const text = readFileSync(path, "utf8");
  if (!text.includes("-----BEGIN")) throw new Error(`GitHub App configuration: GITHUB_APP_PRIVATE_KEY file ${path} holds no PEM key`);
  return text;
}

/** `https://api.github.com` → `https://github.com`; GHES `https://ghe.example/api/v3` → `https://ghe.example`. */
export function gitUrlFor(apiUrl: string): string {
  const url = new URL(apiUrl);
  if (url.hostname === "api.github.com") return "https://github.com";
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/api\/v3\/?$/, "").replace(/\/+$/, "")}`;
}
