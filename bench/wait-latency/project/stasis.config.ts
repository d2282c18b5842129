import { defineConfig } from "stasis/sdk";

export default defineConfig({ project: "waitbench" });
