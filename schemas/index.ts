export * from "./common.ts";
export * from "./status.ts";
export * from "./config.ts";
export * from "./manifest.ts";
export * from "./api.ts";
export * from "./waitpoint.ts";
export * from "./runner-api.ts";
export * from "./ipc.ts";
