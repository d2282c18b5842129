/**
 * The environment a build child (and the task indexing it starts) gets: an allow-list, never a
 * copy of the parent's. The platform's secrets (STASIS_ADMIN_TOKEN, STASIS_RUNNER_TOKEN,
 * STASIS_API_KEY, STASIS_ENCRYPTION_KEY, GITHUB_APP_PRIVATE_KEY, GITHUB_WEBHOOK_SECRET,
 * DATABASE_URL, STASIS_REGISTRY_*, a CI's OIDC request token …) are simply not on it.
 *
 * NODE_OPTIONS passes: it is the operator's own setting (it could load code, but only code the
 * operator chose), and a build may need e.g. `--max-old-space-size`.
 *
 * The project's own build-time variables are passed as `STASIS_BUILD_ENV_<NAME>=value` in the
 * parent's environment; the build sees them as `<NAME>=value`, and STASIS_BUILD_ENV_NAMES lists
 * them, so a step the build starts (task indexing) passes them on again.
 */
export const BUILD_ENV_PASS = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "NODE_OPTIONS", "NODE_ENV", "CI"] as const;
export const BUILD_ENV_PREFIX = "STASIS_BUILD_ENV_";
export const BUILD_ENV_NAMES = "STASIS_BUILD_ENV_NAMES";
/** Never passed, whatever STASIS_BUILD_ENV_NAMES says (a project variable is passed by prefix instead). */
const PLATFORM_SECRETS = /^(STASIS_(ADMIN_TOKEN|RUNNER_TOKEN|API_KEY|ENCRYPTION_KEY|REGISTRY_.*)|GITHUB_(APP_PRIVATE_KEY|WEBHOOK_SECRET|TOKEN)|DATABASE_URL|ACTIONS_.*)$/;

export function sandboxEnv(parent: NodeJS.ProcessEnv, overrides: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of BUILD_ENV_PASS) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  const names: string[] = [];
  for (const [name, value] of Object.entries(parent)) {
    if (name.startsWith(BUILD_ENV_PREFIX) && name.length > BUILD_ENV_PREFIX.length && value !== undefined) {
      env[name.slice(BUILD_ENV_PREFIX.length)] = value;
      names.push(name.slice(BUILD_ENV_PREFIX.length));
    }
  }
  for (const name of (parent[BUILD_ENV_NAMES] ?? "").split(",")) {
    const value = parent[name];
    if (name && value !== undefined && !(name in env) && !PLATFORM_SECRETS.test(name)) {
      env[name] = value;
      names.push(name);
    }
  }
  if (names.length > 0) env[BUILD_ENV_NAMES] = names.sort().join(",");
  env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return { ...env, ...overrides };
}
