import { format } from "node:util";
import type { LogLevel } from "../../schemas/index.ts";
import { setLogSink } from "../logger.ts";
import type { IpcChannel } from "./ipc-channel.ts";

/** Sends `console.*` and `logger.*` to the run log with a timestamp and a level. */
export function captureConsole(channel: IpcChannel): void {
  const send = (level: LogLevel, message: string, data?: Record<string, unknown>) =>
    channel.send({ type: "log", ts: new Date().toISOString(), level, message, ...(data ? { data } : {}) });
  const levels: Array<[keyof Console, LogLevel]> = [
    ["log", "info"],
    ["info", "info"],
    ["debug", "debug"],
    ["warn", "warn"],
    ["error", "error"],
  ];
  for (const [method, level] of levels) {
    (console as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => send(level, format(...args));
  }
  setLogSink((level, message, data) => send(level, message, data));
}
