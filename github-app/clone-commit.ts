import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { simpleGit } from "simple-git";

export interface CloneCommitOptions {
  /** `https://host/owner/name.git` */
  url: string;
  /** Installation token: sent as an HTTP header, never written to the clone's config or a URL. */
  token: string;
  sha: string;
  /** Parent of the fresh work dir. */
  workRoot: string;
  signal?: AbortSignal;
}

export interface ClonedCommit {
  dir: string;
  remove(): Promise<void>;
}

/** A shallow checkout of exactly one commit in a fresh directory; the caller removes it. */
export async function cloneCommit(options: CloneCommitOptions): Promise<ClonedCommit> {
  const dir = await mkdtemp(join(options.workRoot, `${options.sha.slice(0, 12)}-`));
  const remove = () => rm(dir, { recursive: true, force: true });
  const basic = Buffer.from(`x-access-token:${options.token}`).toString("base64");
  try {
    const git = simpleGit({ baseDir: dir, abort: options.signal, allowEnvironment: ["GIT_TERMINAL_PROMPT"], config: [`http.extraHeader=Authorization: Basic ${basic}`] }).env({
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? dir,
      GIT_TERMINAL_PROMPT: "0",
    });
    await git.init();
    await git.addRemote("origin", options.url);
    // Fetching one sha (not a branch) builds exactly the commit the event named, even if the branch moved since.
    await git.fetch(["--depth=1", "--no-tags", "origin", options.sha]);
    await git.checkout(["--detach", "--quiet", options.sha]);
    return { dir, remove };
  } catch (thrown) {
    await remove();
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    if (options.signal?.aborted) throw options.signal.reason;
    throw new Error(`git clone of ${options.url} at ${options.sha.slice(0, 12)} failed: ${redact(error.message, [options.token, basic]).trim()}`);
  }
}

const redact = (text: string, secrets: string[]) => secrets.reduce((t, s) => t.split(s).join("[redacted]"), text);
