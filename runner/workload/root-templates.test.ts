import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createRootTemplates, rootArchiveField, rootContentKey } from "./root-templates.ts";

const dir = await mkdtemp(path.join(tmpdir(), "root-templates-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A root archive as the runtime saves one: `tar` of a dir holding etc/passwd with `text`, its files dated `mtime` (s). */
async function rootArchive(name: string, text: string, mtime = 1_000_000): Promise<string> {
  const root = path.join(dir, `root-${name}`);
  await mkdir(path.join(root, "etc"), { recursive: true });
  await writeFile(path.join(root, "etc", "passwd"), text);
  for (const p of [path.join(root, "etc", "passwd"), path.join(root, "etc"), root]) await utimes(p, mtime, mtime);
  const archive = path.join(dir, `${name}.tar`);
  execFileSync("tar", ["--create", "--numeric-owner", "--file", archive, "--directory", root, "."]);
  return archive;
}
const keyOf = async (archive: string) => rootContentKey(await readFile(archive));

describe("root templates", () => {
  it("know a root by its files, not by when they were made: the same files at other times are one root, another file's bytes another", async () => {
    const first = await rootArchive("first", "task:x:1000000001\n", 1_000_000);
    const later = await rootArchive("later", "task:x:1000000001\n", 2_000_000);
    const other = await rootArchive("other", "task:x:1000000002\n", 1_000_000);
    expect(await readFile(first)).not.toEqual(await readFile(later));
    expect(await keyOf(later)).toBe(await keyOf(first));
    expect(await keyOf(other)).not.toBe(await keyOf(first));
  });

  it("keep the newest roots noted, one copy each, the newest three", async () => {
    const templates = createRootTemplates(path.join(dir, "templates"));
    expect(templates.newest()).toBeUndefined();
    const roots = await Promise.all(["a", "b", "c", "d"].map((n) => rootArchive(`keep-${n}`, `root ${n}\n`)));
    templates.note(roots[0]!);
    expect(await readFile(templates.newest()!)).toEqual(await readFile(roots[0]!));
    templates.note(roots[1]!);
    // Another checkpoint of the first sandbox: its template again, no second copy.
    templates.note(await rootArchive("keep-a-again", "root a\n", 3_000_000));
    expect(templates.newest()).toBe(path.join(dir, "templates", `${await keyOf(roots[0]!)}.root.tar`));
    templates.note(roots[2]!);
    templates.note(roots[3]!);
    const kept = await Promise.all([roots[0]!, roots[2]!, roots[3]!].map(async (r) => `${await keyOf(r)}.root.tar`));
    expect((await readdir(path.join(dir, "templates"))).sort()).toEqual(kept.sort());
  });

  it("tell a guard to keep the root it filled from a template only when the checkpoint's root holds the same files", async () => {
    const templates = createRootTemplates(path.join(dir, "field"));
    const same = await rootArchive("field-same", "the root\n", 1_000_000);
    templates.note(same);
    const guard = (args: string[]) => ({ spawnargs: ["setpriv", "bash", "-c", "…", "stasis-criu-root-guard", "owner", "/root", "/scratch", "256m", ...args] }) as unknown as ChildProcess;
    const filled = guard([templates.newest()!]);
    // Each checkpoint's root noted as it comes (its key read once), as the runtime does.
    const field = (g: ChildProcess, archive: string) => rootArchiveField(g, archive, templates.note(archive));
    expect(field(filled, await rootArchive("field-later", "the root\n", 2_000_000))).toBe("");
    const other = await rootArchive("field-other", "another root\n");
    expect(field(filled, other)).toBe(other);
    // A guard started with no template, and a checkpoint whose archive is missing: the archive, for the guard to fill (or refuse).
    expect(field(guard([]), same)).toBe(same);
    expect(field(filled, path.join(dir, "missing.tar"))).toBe(path.join(dir, "missing.tar"));
  });
});
