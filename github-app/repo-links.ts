import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

export interface RepoLink {
  /** `owner/name` as GitHub spells it. */
  repository: string;
  installationId: number;
  project: string;
  /** The repository's default branch as last set on the project's deploy policy (from a push or pull_request payload). */
  defaultBranch?: string;
}

export interface RepoLinks {
  get(repository: string): RepoLink | undefined;
  set(link: RepoLink): Promise<void>;
  remove(repository: string): Promise<RepoLink | undefined>;
  list(): RepoLink[];
}

/** Which repositories the App deploys, kept in one JSON file written atomically (tmp + rename). */
export async function createRepoLinks(file: string): Promise<RepoLinks> {
  await mkdir(dirname(file), { recursive: true });
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? "[]" : Promise.reject(error)));
  const links = new Map<string, RepoLink>((JSON.parse(text) as RepoLink[]).map((l) => [key(l.repository), l]));
  let writing = Promise.resolve();
  const save = () => {
    // Writes are chained so an older snapshot never lands after a newer one.
    writing = writing.then(async () => {
      await writeFile(`${file}.tmp`, `${JSON.stringify([...links.values()], null, 2)}\n`);
      await rename(`${file}.tmp`, file);
    });
    return writing;
  };
  return {
    get: (repository) => links.get(key(repository)),
    async set(link) {
      links.set(key(link.repository), link);
      await save();
    },
    async remove(repository) {
      const link = links.get(key(repository));
      if (!link) return undefined;
      links.delete(key(repository));
      await save();
      return link;
    },
    list: () => [...links.values()],
  };
}

const key = (repository: string) => repository.toLowerCase();
