import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadGithubAppConfig } from "./config.ts";
import { resolveProjectDir } from "./project-dir.ts";

let clone: string;
beforeEach(async () => {
  clone = await realpath(await mkdtemp(join(tmpdir(), "stasis-project-dir-")));
  await mkdir(join(clone, "tasks"));
  await mkdir(join(clone, "apps", "jobs"), { recursive: true });
});
afterEach(() => rm(clone, { recursive: true, force: true }));

describe("resolveProjectDir", () => {
  it("uses STASIS_PROJECT_PATH when the repository has no .stasis.yml", async () => {
    expect(await resolveProjectDir(clone, ".")).toEqual({ dir: clone, path: "." });
    expect(await resolveProjectDir(clone, "apps/jobs")).toEqual({ dir: join(clone, "apps", "jobs"), path: "apps/jobs" });
  });

  it("a .stasis.yml at the root names the path, over the App's default", async () => {
    await writeFile(join(clone, ".stasis.yml"), "path: tasks\n");
    expect(await resolveProjectDir(clone, "apps/jobs")).toEqual({ dir: join(clone, "tasks"), path: "tasks" });
  });

  it("an empty .stasis.yml keeps the default", async () => {
    await writeFile(join(clone, ".stasis.yml"), "# nothing yet\n");
    expect((await resolveProjectDir(clone, "tasks")).path).toBe("tasks");
  });

  it("refuses paths that leave the repository, missing directories, unknown keys and a symlinked settings file", async () => {
    await writeFile(join(clone, ".stasis.yml"), "path: ../elsewhere\n");
    await expect(resolveProjectDir(clone, ".")).rejects.toThrow(".stasis.yml: path: a path relative to the repository root, without `..`");
    await writeFile(join(clone, ".stasis.yml"), "path: missing\n");
    await expect(resolveProjectDir(clone, ".")).rejects.toThrow("the project path missing does not exist in the repository");
    await writeFile(join(clone, ".stasis.yml"), "paht: tasks\n");
    await expect(resolveProjectDir(clone, ".")).rejects.toThrow(".stasis.yml: (root): Unrecognized key");
    await symlink("/", join(clone, "escape"));
    await writeFile(join(clone, ".stasis.yml"), "path: escape\n");
    await expect(resolveProjectDir(clone, ".")).rejects.toThrow("the project path escape leads outside the repository");
    await rm(join(clone, ".stasis.yml"));
    await symlink("/etc/hostname", join(clone, ".stasis.yml"));
    await expect(resolveProjectDir(clone, ".")).rejects.toThrow(".stasis.yml must be a regular file");
  });
});

describe("STASIS_PROJECT_PATH", () => {
  const base = { GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY: "-----BEGIN KEY-----\nx\n-----END KEY-----", GITHUB_WEBHOOK_SECRET: "secret-123", STASIS_API_URL: "http://127.0.0.1:1", STASIS_ADMIN_TOKEN: "a".repeat(16) };
  it("defaults to the repository root and refuses a path with ..", () => {
    expect(loadGithubAppConfig(base).projectPath).toBe(".");
    expect(loadGithubAppConfig({ ...base, STASIS_PROJECT_PATH: "tasks" }).projectPath).toBe("tasks");
    expect(() => loadGithubAppConfig({ ...base, STASIS_PROJECT_PATH: "../x" })).toThrow("STASIS_PROJECT_PATH: a path relative to the repository root");
  });
});
