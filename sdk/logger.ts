import type { LogLevel } from "../schemas/index.ts";

export type LogSink = (level: LogLevel, message: string, data?: Record<string, unknown>) => void;

/** Outside a run, the logger writes to the console; the worker runtime points it at the run log. */
let sink: LogSink = (level, message, data) => {
  const line = data ? `${message} ${JSON.stringify(data)}` : message;
  (level === "error" ? console.error : level === "warn" ? console.warn : console.log)(line);
};

export function setLogSink(next: LogSink): void {
  sink = next;
}

export const logger = {
  debug: (message: string, data?: Record<string, unknown>) => sink("debug", message, data),
  info: (message: string, data?: Record<string, unknown>) => sink("info", message, data),
  log: (message: string, data?: Record<string, unknown>) => sink("info", message, data),
  warn: (message: string, data?: Record<string, unknown>) => sink("warn", message, data),
  error: (message: string, data?: Record<string, unknown>) => sink("error", message, data),
};
