import { z } from "zod";

/** A directory inside the repository, relative to its root: `.`, `tasks`, `apps/jobs`; no `..`, no leading `/`. */
export const ProjectPath = z
  .string()
  .min(1)
  .max(255)
  .refine((p) => !p.startsWith("/") && !p.includes("\\") && p.split("/").every((part) => part !== ".."), "a path relative to the repository root, without `..`, e.g. tasks");

/** `.stasis.yml` at a repository's root, read by the GitHub App (never executed). */
export const RepoSettings = z
  .object({
    /** Where the project (`stasis.config.ts`, `trigger/`) sits in the repository. */
    path: ProjectPath.optional(),
  })
  .strict();
export type RepoSettings = z.infer<typeof RepoSettings>;
