import type { Command } from "commander";
import type { z } from "zod";
import { callStasisApi } from "../../builder/index.ts";
import type { CreateKeyResponse, CreateProjectResponse, EnvironmentView, ListEnvironmentsResponse, ListKeysResponse, ListProjectsResponse, ProjectView, RotateKeyResponse } from "../../schemas/index.ts";
import { resolveAdminTarget } from "../api-target.ts";
import { printResult, table } from "../output.ts";

type Json = { json?: boolean };
const project = (slug: string) => `/api/v1/admin/projects/${encodeURIComponent(slug)}`;
const environment = (slug: string, env: string) => `${project(slug)}/environments/${encodeURIComponent(env)}`;

function admin<T>(method: string, path: string, body?: unknown): Promise<T> {
  const { apiUrl, adminToken } = resolveAdminTarget();
  return callStasisApi<T>(apiUrl, adminToken, method, path, body);
}

function environmentsTable(rows: Array<z.infer<typeof EnvironmentView>>): string {
  return table([["ENVIRONMENT", "PROMOTED", "ARCHIVED"], ...rows.map((e) => [e.slug, e.promotedVersion ?? "-", e.archived ? "yes" : "no"])]);
}

/** Admin commands (the server's admin token): projects, their environments and API keys. */
export function registerAdminCommands(program: Command): void {
  const projects = program.command("projects").description("create, list and link projects (admin token)");
  projects
    .command("create <slug>")
    .description("create a project with production, staging and development; prints their API keys once")
    .option("--repository <owner/name>", "link a GitHub repository (the Action's OIDC exchange and the App deploy only into its linked project)")
    .option("--json", "print JSON")
    .action(async (slug: string, opts: Json & { repository?: string }) => {
      const created = await admin<z.infer<typeof CreateProjectResponse>>("POST", "/api/v1/admin/projects", { slug });
      if (opts.repository) await admin("PUT", `${project(slug)}/repository`, { repository: opts.repository });
      printResult(Boolean(opts.json), created, () =>
        created.created
          ? [`created project ${slug}${opts.repository ? ` linked to ${opts.repository}` : ""}; API keys (shown once):`, table(created.environments.map((k) => [`  ${k.environment}`, k.apiKey]))].join("\n")
          : `project ${slug} exists already (no keys were made: use stasis keys create)`,
      );
    });
  projects
    .command("list")
    .description("every project with its repository and environments")
    .option("--json", "print JSON")
    .action(async (opts: Json) => {
      const list = await admin<z.infer<typeof ListProjectsResponse>>("GET", "/api/v1/admin/projects");
      printResult(Boolean(opts.json), list, () => table([["PROJECT", "REPOSITORY", "ENVIRONMENTS"], ...list.data.map((p) => [p.slug, p.repository ?? "-", p.environments.map((e) => e.slug + (e.archived ? " (archived)" : "")).join(", ")])]));
    });
  projects
    .command("link-repo <project> <repository>")
    .description("link a project to a GitHub repository (owner/name; 'none' unlinks)")
    .option("--json", "print JSON")
    .action(async (slug: string, repository: string, opts: Json) => {
      const linked = await admin<z.infer<typeof ProjectView>>("PUT", `${project(slug)}/repository`, { repository: repository === "none" ? null : repository });
      printResult(Boolean(opts.json), linked, () => (linked.repository ? `project ${slug} is linked to ${linked.repository}` : `project ${slug} is linked to no repository`));
    });

  const environments = program.command("environments").description("list and archive a project's environments (admin token)");
  environments
    .command("list")
    .requiredOption("--project <slug>", "the project")
    .option("--json", "print JSON")
    .action(async (opts: Json & { project: string }) => {
      const list = await admin<z.infer<typeof ListEnvironmentsResponse>>("GET", `${project(opts.project)}/environments`);
      printResult(Boolean(opts.json), list, () => environmentsTable(list.data));
    });
  environments
    .command("archive <environment>")
    .description("refuse new runs and deploys there; started runs finish")
    .requiredOption("--project <slug>", "the project")
    .option("--json", "print JSON")
    .action(async (env: string, opts: Json & { project: string }) => {
      const archived = await admin<z.infer<typeof EnvironmentView>>("POST", `${environment(opts.project, env)}/archive`, {});
      printResult(Boolean(opts.json), archived, () => `archived ${opts.project}/${env}`);
    });

  const keys = program.command("keys").description("API keys of an environment (admin token)");
  keys
    .command("create")
    .description("a new API key for an environment, shown once; others keep working unless --revoke-others")
    .requiredOption("--project <slug>", "the project")
    .requiredOption("--env <environment>", "production, staging, development or preview/<branch>")
    .option("--revoke-others", "rotate: revoke every other key of the environment")
    .option("--json", "print JSON")
    .action(async (opts: Json & { project: string; env: string; revokeOthers?: boolean }) => {
      const key = await admin<z.infer<typeof CreateKeyResponse>>("POST", `${environment(opts.project, opts.env)}/keys`, { revokeOthers: Boolean(opts.revokeOthers) });
      printResult(Boolean(opts.json), key, () => `${key.apiKey}\n  key ${key.id} for ${opts.project}/${key.environment} (shown once)${key.revoked ? `; revoked ${key.revoked} other key(s)` : ""}`);
    });
  keys
    .command("list")
    .requiredOption("--project <slug>", "the project")
    .requiredOption("--env <environment>", "the environment")
    .option("--json", "print JSON")
    .action(async (opts: Json & { project: string; env: string }) => {
      const list = await admin<z.infer<typeof ListKeysResponse>>("GET", `${environment(opts.project, opts.env)}/keys`);
      printResult(Boolean(opts.json), list, () => table([["ID", "CREATED", "REVOKED"], ...list.data.map((k) => [k.id, k.createdAt, k.revokedAt ?? "-"])]));
    });
  keys
    .command("revoke <id>")
    .requiredOption("--project <slug>", "the project")
    .requiredOption("--env <environment>", "the environment")
    .option("--json", "print JSON")
    .action(async (id: string, opts: Json & { project: string; env: string }) => {
      await admin("DELETE", `${environment(opts.project, opts.env)}/keys/${encodeURIComponent(id)}`);
      printResult(Boolean(opts.json), { id, revoked: true }, () => `revoked key ${id}`);
    });

  const operator = program.command("admin").description("operator commands (admin token)");
  operator
    .command("rotate-key")
    .description("re-wrap every project's data key under the server's STASIS_ENCRYPTION_KEY (start the servers with the new key and the old one as STASIS_ENCRYPTION_KEY_PREVIOUS first)")
    .option("--json", "print JSON")
    .action(async (opts: Json) => {
      const result = await admin<RotateKeyResponse>("POST", "/api/v1/admin/encryption/rotate-key");
      printResult(Boolean(opts.json), result, () => `re-wrapped ${result.rewrapped} of ${result.total} data key(s) under master key ${result.masterKeyId}; STASIS_ENCRYPTION_KEY_PREVIOUS can now be removed`);
    });
}
