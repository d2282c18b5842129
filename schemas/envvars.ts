import { z } from "zod";

/** Names a shell would accept; `STASIS_*` is the platform's own. */
export const EnvVarName = z
  .string()
  .max(256)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a variable name matches ^[A-Za-z_][A-Za-z0-9_]*$")
  .refine((name) => !name.toUpperCase().startsWith("STASIS_"), "names starting with STASIS_ are reserved for the platform");

export const MAX_ENV_VALUE_BYTES = 64 * 1024;
const encoder = new TextEncoder();
const utf8Bytes = (value: string) => encoder.encode(value).length;
export const EnvVarValue = z.string().refine((value) => utf8Bytes(value) <= MAX_ENV_VALUE_BYTES, `a value is at most ${MAX_ENV_VALUE_BYTES} bytes (64 KiB)`);

/** Where variables live: an environment, or `preview`, the set every `preview/*` environment inherits. */
export const EnvVarScope = z
  .string()
  .regex(/^(production|staging|development|preview|preview\/[a-zA-Z0-9._-]{1,100})$/, "scope is production, staging, development, preview or preview/<branch>");

/** name → value; each bad name is reported with the rule it breaks (zod's record keys say only "invalid key"). */
export const EnvVarsRecord = z.record(z.string(), EnvVarValue).superRefine((vars, ctx) => {
  const names = Object.keys(vars);
  if (names.length > 500) ctx.addIssue({ code: "custom", message: "at most 500 variables at once" });
  for (const name of names) {
    const checked = EnvVarName.safeParse(name);
    if (!checked.success) ctx.addIssue({ code: "custom", path: [name], message: `${JSON.stringify(name)}: ${checked.error.issues[0]!.message}` });
  }
});

/** Set (upsert) variables; all or nothing. */
export const SetEnvVarsRequest = z.object({ variables: EnvVarsRecord }).strict();
export type SetEnvVarsRequest = z.infer<typeof SetEnvVarsRequest>;
export const SetEnvVarRequest = z.object({ value: EnvVarValue }).strict();

/** A whole set (e.g. a parsed `.env`); `replace` also deletes the scope's names not in it. All or nothing. */
export const ImportEnvVarsRequest = z.object({ variables: EnvVarsRecord, replace: z.boolean().default(false) }).strict();

export const EnvVarView = z.object({
  name: z.string(),
  /** Present only when asked for (`reveal=true`, or a single get). */
  value: z.string().optional(),
  /** Where the value comes from: the environment itself, or `preview` (inherited). */
  source: z.string(),
  updatedAt: z.string(),
});
export type EnvVarView = z.infer<typeof EnvVarView>;

export const EnvVarListQuery = z.object({ reveal: z.enum(["true", "false"]).optional() });
export const EnvVarListResponse = z.object({ project: z.string(), environment: z.string(), data: z.array(EnvVarView) });
export type EnvVarListResponse = z.infer<typeof EnvVarListResponse>;
export const SetEnvVarsResponse = z.object({ project: z.string(), environment: z.string(), set: z.array(z.string()), deleted: z.array(z.string()).optional() });
export const DeleteEnvVarResponse = z.object({ project: z.string(), environment: z.string(), deleted: z.boolean() });
export const RotateKeyResponse = z.object({ masterKeyId: z.string(), rewrapped: z.number().int(), total: z.number().int() });
export type RotateKeyResponse = z.infer<typeof RotateKeyResponse>;

/** Shorter values are not redacted from logs: they would match too much ordinary text. */
export const MIN_REDACTED_LENGTH = 6;

/**
 * Replaces every value (≥ MIN_REDACTED_LENGTH) of `variables` in a text with `[redacted:NAME]`,
 * longest first so a value containing another is replaced whole. Used by the runner before it ships
 * a log line and by the server before it stores one.
 */
export function createRedactor(variables: Record<string, string> | Array<[string, string]>): { text(value: string): string; deep<T>(value: T): T; readonly empty: boolean } {
  const pairs = (Array.isArray(variables) ? variables : Object.entries(variables))
    .filter(([, value]) => value.length >= MIN_REDACTED_LENGTH)
    .sort((a, b) => b[1].length - a[1].length);
  const text = (value: string): string => {
    let out = value;
    for (const [name, secret] of pairs) if (out.includes(secret)) out = out.split(secret).join(`[redacted:${name}]`);
    return out;
  };
  const deep = <T>(value: T): T => {
    if (pairs.length === 0) return value;
    if (typeof value === "string") return text(value) as T;
    if (Array.isArray(value)) return value.map(deep) as T;
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [text(k), deep(v)])) as T;
    return value;
  };
  return { text: (value) => (pairs.length === 0 ? value : text(value)), deep, empty: pairs.length === 0 };
}
