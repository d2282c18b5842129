import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { CheckpointSite } from "../schemas/index.ts";

/**
 * The id of the runners that keep their dumps under one work dir (local-checkpoints.ts): any of them
 * takes a dump another kept, by a rename. The first runner on the work dir makes it up and leaves it
 * there; the others read it. The server sends a resume whose holder has no free slot straight to a
 * runner of the same site, which restores the kept dump as the holder would (server/engine/resume-push.ts).
 */
export async function checkpointSite(workDir: string): Promise<string> {
  const root = path.join(workDir, "local-checkpoints");
  const file = path.join(root, "site");
  await mkdir(root, { recursive: true, mode: 0o700 });
  const existing = await readSite(file);
  if (existing) return existing;
  // Written whole under a name of its own, then linked in: a runner starting beside this one reads either nothing or all of it.
  const draft = `${file}.${process.pid}-${randomBytes(4).toString("hex")}`;
  await writeFile(draft, randomBytes(16).toString("hex"), { mode: 0o600 });
  try {
    await link(draft, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await rm(draft, { force: true });
  }
  const site = await readSite(file);
  if (!site) throw new Error(`${file} does not hold a checkpoint site id (32 hex characters): remove it, and a runner makes another`);
  return site;
}

async function readSite(file: string): Promise<string | null> {
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return null;
    throw error;
  });
  if (text === null) return null;
  const site = text.trim();
  return CheckpointSite.safeParse(site).success ? site : "";
}
