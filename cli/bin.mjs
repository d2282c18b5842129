#!/usr/bin/env node
// The `stasis` command. Runs the bundle scripts/build-dist.mjs makes (dist/cli/: a command starts in
// about half the time and CPU) while every source it was built from is unchanged, and the TypeScript
// sources through tsx otherwise (an edited checkout, or STASIS_CLI_FROM_SOURCES=1).
import { readFileSync, statSync } from "node:fs";

const root = new URL("..", import.meta.url);

function bundleIsCurrent() {
  try {
    const inputs = JSON.parse(readFileSync(new URL("dist/cli/inputs.json", root), "utf8"));
    return inputs.every(([file, size, mtimeMs]) => {
      const st = statSync(new URL(file, root));
      return st.size === size && st.mtimeMs === mtimeMs;
    });
  } catch {
    return false;
  }
}

if (process.env.STASIS_CLI_FROM_SOURCES !== "1" && bundleIsCurrent()) {
  // Stack traces name the sources, as they do through tsx.
  process.setSourceMapsEnabled(true);
  await import("../dist/cli/main.mjs");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("./main.ts");
}
