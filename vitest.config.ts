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
      { extends: true, test: { name: "heavy", include: ALL_TEST_FILES, exclude: [...EXCLUDED, ...LIGHT_TEST_FILES] } },
      // Light files share one worker and its loaded modules (~130 s of CPU re-importing the server per file).
      { extends: true, test: { name: "light", include: LIGHT_TEST_FILES, exclude: EXCLUDED, isolate: false } },
    ],
  },
});
