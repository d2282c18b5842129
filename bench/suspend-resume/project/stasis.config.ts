import { defineConfig } from "stasis/sdk";

export default defineConfig({ project: "bench", retries: { default: { maxAttempts: 1 } } });
