/** The Stasis project a repository deploys to: its name, lowercased, reduced to `[a-z0-9-]`. */
export function projectSlugFor(repositoryName: string): string {
  const slug = repositoryName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);
  if (!slug) throw new Error(`repository name ${JSON.stringify(repositoryName)} gives no project slug`);
  return slug;
}

/** `preview/pr-<n>`: one environment per pull request. */
export const previewEnvironment = (pullNumber: number) => `preview/pr-${pullNumber}`;
