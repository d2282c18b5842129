import { z } from "zod";
import { EnvironmentSlug } from "../../schemas/index.ts";

export type GetInput = (name: string) => string;

const optional = (schema: z.ZodString) => z.preprocess((v) => (v === "" ? undefined : v), schema.optional());
const boolean = z.preprocess((v) => (v === "" ? "false" : String(v).trim().toLowerCase()), z.enum(["true", "false"], { error: "must be true or false" })).transform((v) => v === "true");

const RawInputs = z
  .object({
    "api-url": z.url({ error: "must be the Stasis server's URL, e.g. https://stasis.example.com" }),
    "api-key": optional(z.string()),
    "working-directory": z.preprocess((v) => (v === "" ? "." : v), z.string()),
    environment: optional(EnvironmentSlug),
    "skip-promotion": boolean,
    registry: optional(z.string().regex(/^(oci-layout:.+|[^/\s]+\/[^\s@]+)$/, "is host[:port]/repository (or oci-layout:<dir> for a server on this machine)")),
    "registry-username": optional(z.string()),
    "registry-password": optional(z.string()),
    "oidc-audience": z.preprocess((v) => (v === "" ? "stasis" : v), z.string().min(1)),
    project: optional(z.string()),
    "runtime-image": optional(z.string().regex(/^[^/\s]+\/[^\s]+(@sha256:[0-9a-f]{64}|:[\w][\w.-]*)$/, "is host[:port]/repository@sha256:<digest> (or :<tag>), as `stasis admin push-runtime` prints it")),
  })
  .refine((i) => Boolean(i["registry-username"]) === Boolean(i["registry-password"]), {
    message: "registry-username and registry-password go together: set both or neither",
    path: ["registry-password"],
  });

export interface ActionInputs {
  apiUrl: string;
  /** A deploy token or environment API key; absent means OIDC. */
  apiKey?: string;
  workingDirectory: string;
  environment?: string;
  promote: boolean;
  registry?: string;
  registryAuth?: { username: string; password: string };
  oidcAudience: string;
  project?: string;
  /** The runtime image (Node) task images build on; unset = the Node running the action. */
  runtimeImage?: string;
}

export const INPUT_NAMES = Object.keys(RawInputs.shape) as Array<keyof z.input<typeof RawInputs>>;

/** Reads and validates every input once; a bad one names the input and says what it should be. */
export function readInputs(getInput: GetInput): ActionInputs {
  const raw = Object.fromEntries(INPUT_NAMES.map((name) => [name, getInput(name).trim()]));
  const parsed = RawInputs.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `input ${String(issue.path[0] ?? "?")}: ${issue.message}`);
    throw new Error(problems.join("; "));
  }
  const i = parsed.data;
  return {
    apiUrl: i["api-url"].replace(/\/+$/, ""),
    apiKey: i["api-key"],
    workingDirectory: i["working-directory"],
    environment: i.environment,
    promote: !i["skip-promotion"],
    registry: i.registry ? lowerCaseRepository(i.registry) : undefined,
    registryAuth: i["registry-username"] && i["registry-password"] ? { username: i["registry-username"], password: i["registry-password"] } : undefined,
    oidcAudience: i["oidc-audience"],
    project: i.project,
    runtimeImage: i["runtime-image"],
  };
}

/**
 * Repository names in a registry are lower case (the Distribution spec; GHCR refuses others), while
 * `${{ github.repository }}` keeps the owner's and repository's case: lower the path, keep the host.
 */
export function lowerCaseRepository(registry: string): string {
  if (registry.startsWith("oci-layout:")) return registry;
  const slash = registry.indexOf("/");
  return registry.slice(0, slash + 1) + registry.slice(slash + 1).toLowerCase();
}
