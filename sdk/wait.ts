import type { ReceivedRequest, WaitResult, WaitSpec } from "../schemas/index.ts";
import { durationToMs, type Duration } from "./duration.ts";
import { WaitTimeoutError } from "./errors.ts";
import { requireRunRuntime } from "./run-runtime.ts";

export async function waitForResult(spec: WaitSpec): Promise<WaitResult> {
  const result = await requireRunRuntime("wait").wait(spec);
  if (result.kind === "timeout") throw new WaitTimeoutError(result.message);
  return result;
}

export interface RequestWait {
  /** Unguessable URL; the first request to it (any method) completes the wait. */
  url: string;
  /** Resolves with that request's method, headers, query and body; the run is frozen meanwhile. */
  response: PromiseLike<ReceivedRequest>;
}

export const wait = {
  /** Waits for a duration, e.g. `wait.for({ minutes: 5 })`. Long waits free the machine. */
  async for(duration: Duration): Promise<void> {
    await waitForResult({ kind: "duration", ms: durationToMs(duration) });
  },
  /** Waits until a date. */
  async until(date: Date | string): Promise<void> {
    const at = new Date(date);
    if (Number.isNaN(at.getTime())) throw new TypeError(`wait.until: "${String(date)}" is not a date`);
    await waitForResult({ kind: "until", date: at.toISOString() });
  },
  /**
   * Creates a URL and lets the run wait for a request to it:
   * `const { url, response } = await wait.forRequest({ timeout: { hours: 1 } }); send(url); const req = await response;`
   */
  async forRequest(options: { timeout?: Duration } = {}): Promise<RequestWait> {
    const runtime = requireRunRuntime("wait.forRequest");
    const timeoutMs = options.timeout === undefined ? undefined : durationToMs(options.timeout);
    const { token, url } = (await runtime.call({ method: "createRequestToken", timeoutMs })) as { token: string; url: string };
    let pending: Promise<ReceivedRequest> | undefined;
    const response: PromiseLike<ReceivedRequest> = {
      then(onFulfilled, onRejected) {
        pending ??= waitForResult({ kind: "request", token }).then((result) => {
          if (result.kind !== "request") throw new Error(`expected a request, got a ${result.kind} result`);
          return result.request;
        });
        return pending.then(onFulfilled, onRejected);
      },
    };
    return { url, response };
  },
};
