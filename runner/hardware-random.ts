import { execFile, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const HARDWARE_RANDOM_CONFIG = fileURLToPath(new URL("./openssl-rdrand.cnf", import.meta.url));

const FLAG = `--openssl-config=${HARDWARE_RANDOM_CONFIG}`;
const PROBE = [FLAG, "-e", "require('node:crypto').randomBytes(16)"];

let flags: string[] | undefined;
let probing: Promise<string[]> | undefined;

/**
 * Node flags that make a task process's OpenSSL draw random bytes from the CPU (the rdrand engine)
 * rather than from its DRBG, whose state lives in process memory and is copied by a checkpoint: two
 * restores of one checkpoint gave the same `randomBytes()`, `getRandomValues()` and TLS randoms. It
 * must be set when the process starts (OpenSSL picks its RAND method once). Empty where the CPU has
 * no RDRAND or this Node's OpenSSL has no engines (the probe fails): README "After a restore".
 * The config file is part of this package, never a path a task could write.
 *
 * This one waits for the probe's Node to start and exit with the event loop blocked (tests, benches);
 * the runner asks `probeHardwareRandomFlags()`.
 */
export function hardwareRandomFlags(): string[] {
  // Node ignores a config file that is missing: only a file that is there proves anything.
  if (!flags) flags = existsSync(HARDWARE_RANDOM_CONFIG) && spawnSync(process.execPath, PROBE, { stdio: "ignore", timeout: 10_000 }).status === 0 ? [FLAG] : [];
  return flags;
}

/**
 * The same flags, probed without blocking the event loop: a runner's first task start on a loaded
 * machine waited seconds for the probe's Node, its heartbeats and polls with it.
 */
export function probeHardwareRandomFlags(): Promise<string[]> {
  if (flags) return Promise.resolve(flags);
  probing ??= new Promise<string[]>((resolve) => {
    if (!existsSync(HARDWARE_RANDOM_CONFIG)) return resolve((flags = []));
    execFile(process.execPath, PROBE, { timeout: 10_000 }, (error) => resolve((flags ??= error ? [] : [FLAG])));
  });
  return probing;
}

/**
 * The host files those flags name (once probed). A runtime that runs the task on the image's own root (runc) must
 * bind them into the container, or the task's Node does not find the config and silently goes on
 * with OpenSSL's in-memory generator.
 */
export function hardwareRandomFiles(): string[] {
  return hardwareRandomFlags().length ? [HARDWARE_RANDOM_CONFIG] : [];
}
