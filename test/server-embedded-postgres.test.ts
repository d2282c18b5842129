import { mkdtempSync, chmodSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { connectDatabase, ensureProject, migrate, startEmbeddedPostgres } from "../server/index.ts";

const root = mkdtempSync(path.join(tmpdir(), "stasis-embedded-"));
chmodSync(root, 0o755);
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("embedded PostgreSQL keeps its data across a restart in the same data dir", async () => {
  const dataDir = path.join(root, ".stasis", "pg");
  const first = await startEmbeddedPostgres({ dataDir });
  let db = connectDatabase(first.url);
  await migrate(db);
  await ensureProject(db, { slug: "kept" });
  await db.destroy();
  await first.stop();

  const second = await startEmbeddedPostgres({ dataDir });
  db = connectDatabase(second.url);
  try {
    await migrate(db);
    expect(await db("projects").where({ slug: "kept" }).first("slug")).toEqual({ slug: "kept" });
  } finally {
    await db.destroy();
    await second.stop();
  }
});
