import { defineConfig } from "vitest/config";
import { LIGHT_TEST_FILES } from "./test/support/test-groups.ts";

const ALL_TEST_FILES = ["{schemas,sdk,builder,server,runner,github-app,action,cli,test}/**/*.test.ts"];
const EXCLUDED = ["**/node_modules/**", "**/dist/**"];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: "forks",
    // One test file at a time within a group: files that freeze and restore processes with CRIU, or
    // run runc containers, change the host's mount table while others start tasks, and a task
    // started unsandboxed then copies mounts that are gone by its restore. scripts/test.sh runs the
    // "light" group (no mount, and no task or only sandboxed ones: test/support/test-groups.ts) as a
    // second vitest process beside the "heavy" one.
    fileParallelism: false,
    maxWorkers: 1,
    globalSetup: ["test/support/global-setup.ts"],
    projects: [
      // Each group's files share one worker and its loaded modules (a fresh worker per file spent
      // ~80 s of the heavy group and ~130 s of CPU in the light one re-importing the server and the
      // runner), so a file gives back any environment variable it sets.
      { extends: true, test: { name: "heavy", include: ALL_TEST_FILES, exclude: [...EXCLUDED, ...LIGHT_TEST_FILES], isolate: false } },
      { extends: true, test: { name: "light", include: LIGHT_TEST_FILES, exclude: EXCLUDED, isolate: false } },
    ],
  },
});
