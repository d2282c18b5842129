// Where a data dir's PostgreSQL data and password live. The data stays at the path asked for when the
// user PostgreSQL runs as can reach it; a project under a directory only root can enter (/root is 0700
// here) keeps its data instead under /var/lib/stasis/pgdata/<sha256 of the path>, reused on every
// start. The password sits beside the data, outside the postgres-owned data dir, mode 0600.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { mkdirShared, SHARED_ROOT } from "./postgres-binaries.ts";
import { userCan, type PostgresUser } from "./postgres-user.ts";

export interface PostgresDataLocation {
  /** The data dir PostgreSQL runs in. */
  dataDir: string;
  /** Root- (or owner-) only file holding the superuser password. */
  passwordFile: string;
  /** True when the data is kept away from the path asked for. */
  relocated: boolean;
}

/** Where the data for `requested` is kept when it cannot be kept there. */
export function relocatedDataLocation(requested: string): PostgresDataLocation {
  const key = createHash("sha256").update(path.resolve(requested)).digest("hex").slice(0, 32);
  const home = path.join(SHARED_ROOT, "pgdata", key);
  return { dataDir: path.join(home, "data"), passwordFile: path.join(home, "password"), relocated: true };
}

function inPlace(requested: string): PostgresDataLocation {
  return { dataDir: requested, passwordFile: `${requested}.password`, relocated: false };
}

/**
 * The data location for `requested`, its parents made. Data already kept in one place stays there;
 * new data goes where PostgreSQL can reach it.
 */
export async function dataLocationFor(requested: string, user: PostgresUser | null): Promise<PostgresDataLocation> {
  const here = inPlace(path.resolve(requested));
  if (!user) {
    await mkdir(path.dirname(here.dataDir), { recursive: true });
    return here;
  }
  const away = relocatedDataLocation(here.dataDir);
  const initialised = (location: PostgresDataLocation) => existsSync(path.join(location.dataDir, "PG_VERSION"));
  if (initialised(away) && !initialised(here)) return away;
  await mkdir(path.dirname(here.dataDir), { recursive: true });
  if (userCan(user, "-x", path.dirname(here.dataDir))) return here;
  if (initialised(here)) throw new Error(`the postgres user can no longer reach the PostgreSQL data in ${here.dataDir}: let it enter ${path.dirname(here.dataDir)} (chmod o+x on each parent) or move the data`);
  await mkdirShared(path.dirname(away.dataDir));
  await writeFile(path.join(path.dirname(away.dataDir), "origin"), `${here.dataDir}\n`);
  return away;
}
