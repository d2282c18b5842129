import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const HARDWARE_RANDOM_CONFIG = fileURLToPath(new URL("./openssl-rdrand.cnf", import.meta.url));

let flags: string[] | undefined;

/**
 * Node flags that make a task process's OpenSSL draw random bytes from the CPU (the rdrand engine)
 * rather than from its DRBG, whose state lives in process memory and is copied by a checkpoint: two
 * restores of one checkpoint gave the same `randomBytes()`, `getRandomValues()` and TLS randoms. It
 * must be set when the process starts (OpenSSL picks its RAND method once). Empty where the CPU has
 * no RDRAND or this Node's OpenSSL has no engines (the probe fails): README "After a restore".
 * The config file is part of this package, never a path a task could write.
 */
export function hardwareRandomFlags(): string[] {
  if (!flags) {
    // Node ignores a config file that is missing: only a file that is there proves anything.
    if (!existsSync(HARDWARE_RANDOM_CONFIG)) return (flags = []);
    const flag = `--openssl-config=${HARDWARE_RANDOM_CONFIG}`;
    const probe = spawnSync(process.execPath, [flag, "-e", "require('node:crypto').randomBytes(16)"], { stdio: "ignore", timeout: 10_000 });
    flags = probe.status === 0 ? [flag] : [];
  }
  return flags;
}

/**
 * The host files those flags name. A runtime that runs the task on the image's own root (runc) must
 * bind them into the container, or the task's Node does not find the config and silently goes on
 * with OpenSSL's in-memory generator.
 */
export function hardwareRandomFiles(): string[] {
  return hardwareRandomFlags().length ? [HARDWARE_RANDOM_CONFIG] : [];
}
