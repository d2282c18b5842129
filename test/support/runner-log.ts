import type { RunnerProcess } from "./stack.ts";

/** A figure from a runner's pino log: the first line with `msg` that has `field`. */
export function loggedFigure(runner: RunnerProcess, msg: string, field: string): number | undefined {
  for (const line of runner.log().split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.msg === msg && typeof entry[field] === "number") return entry[field] as number;
  }
  return undefined;
}
