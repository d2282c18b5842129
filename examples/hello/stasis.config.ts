import { defineConfig } from "stasis/sdk";

export default defineConfig({
  project: "hello",
  machine: { preset: "micro" },
  retries: { default: { maxAttempts: 2 } },
});
