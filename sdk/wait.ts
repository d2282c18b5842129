import type { ReceivedRequest, WaitResult, WaitSpec } from "../schemas/index.ts";
import { durationToMs, type Duration } from "./duration.ts";
import { WaitTimeoutError } from "./errors.ts";
import { requireRunRuntime, type RunRuntime } from "./run-runtime.ts";

export interface WaitOptions {
  /**
   * Names this wait within the run. Without one, a wait is known by its place in the run (its 1st,
   * 2nd … wait). An attempt that runs the code again — after its runner died, or a retry — gets the
   * result this wait already had instead of waiting again. Keyed waits do not count as places.
   */
  key?: string;
}

/** The wait's key: the task's own, or the run's next ordinal. Taken when the wait is called. */
export function waitKeyOf(runtime: RunRuntime, options?: WaitOptions): string {
  return options?.key ? `key:${options.key}` : runtime.nextWaitKey();
}

export async function waitForResult(spec: WaitSpec, key?: string): Promise<WaitResult> {
  const runtime = requireRunRuntime("wait");
  const result = await runtime.wait(spec, key ?? runtime.nextWaitKey());
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
  async for(duration: Duration, options?: WaitOptions): Promise<void> {
    const key = waitKeyOf(requireRunRuntime("wait.for"), options);
    await waitForResult({ kind: "duration", ms: durationToMs(duration) }, key);
  },
  /** Waits until a date. */
  async until(date: Date | string, options?: WaitOptions): Promise<void> {
    const at = new Date(date);
    if (Number.isNaN(at.getTime())) throw new TypeError(`wait.until: "${String(date)}" is not a date`);
    const key = waitKeyOf(requireRunRuntime("wait.until"), options);
    await waitForResult({ kind: "until", date: at.toISOString() }, key);
  },
  /**
   * Creates a URL and lets the run wait for a request to it:
   * `const { url, response } = await wait.forRequest({ timeout: { hours: 1 } }); send(url); const req = await response;`
   */
  async forRequest(options: { timeout?: Duration } & WaitOptions = {}): Promise<RequestWait> {
    const runtime = requireRunRuntime("wait.forRequest");
    const key = waitKeyOf(runtime, options);
    const timeoutMs = options.timeout === undefined ? undefined : durationToMs(options.timeout);
    const { token, url } = (await runtime.call({ method: "createRequestToken", timeoutMs, key })) as { token: string; url: string };
    let pending: Promise<ReceivedRequest> | undefined;
    const response: PromiseLike<ReceivedRequest> = {
      then(onFulfilled, onRejected) {
        pending ??= waitForResult({ kind: "request", token }, key).then((result) => {
          if (result.kind !== "request") throw new Error(`expected a request, got a ${result.kind} result`);
          return result.request;
        });
        return pending.then(onFulfilled, onRejected);
      },
    };
    return { url, response };
  },
};
