import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkpointSite } from "./checkpoint-site.ts";

const root = await mkdtemp(path.join(tmpdir(), "checkpoint-site-"));
afterAll(() => rm(root, { recursive: true, force: true }));

describe("a work dir's checkpoint site", () => {
  it("is one id for every runner on the work dir, made up by the first even when several start at once, and another for another work dir", async () => {
    const shared = path.join(root, "shared");
    const ids = await Promise.all(Array.from({ length: 8 }, () => checkpointSite(shared)));
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(await checkpointSite(shared)).toBe(ids[0]);
    // Only the id is left beside the dumps: no draft of a runner that lost the race.
    expect(await readdir(path.join(shared, "local-checkpoints"))).toEqual(["site"]);
    expect(await checkpointSite(path.join(root, "other"))).not.toBe(ids[0]);
  });

  it("refuses a site file that holds no id, naming it", async () => {
    const broken = path.join(root, "broken");
    await checkpointSite(broken);
    const file = path.join(broken, "local-checkpoints", "site");
    await writeFile(file, "not an id\n");
    await expect(checkpointSite(broken)).rejects.toThrow(`${file} does not hold a checkpoint site id`);
  });
});
