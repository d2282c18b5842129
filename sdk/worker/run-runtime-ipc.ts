import type { RunContext, RunnerToTask, TaskCall, WaitResult } from "../../schemas/index.ts";
import { StasisApiError } from "../errors.ts";
import type { RunRuntime } from "../run-runtime.ts";
import type { IpcChannel } from "./ipc-channel.ts";

type Pending = { resolve: (value: any) => void; reject: (error: Error) => void };

export interface Compensation {
  name: string;
  fn: () => unknown | Promise<unknown>;
}

/** The in-run runtime: calls become `call` messages; replies and wait results come back by callId. */
export function createIpcRunRuntime(channel: IpcChannel, ctx: RunContext): RunRuntime & { compensations: Compensation[]; handle(message: RunnerToTask): boolean } {
  let nextCallId = 1;
  let waitCount = 0;
  let triggerCount = 0;
  const pending = new Map<number, Pending>();
  const compensations: Compensation[] = [];

  function call(call: TaskCall): Promise<unknown> {
    const callId = nextCallId++;
    return new Promise((resolve, reject) => {
      pending.set(callId, { resolve, reject });
      channel.send({ type: "call", callId, call });
    });
  }

  return {
    ctx,
    compensations,
    call,
    wait: (spec, key) => call({ method: "wait", spec, ...(key ? { key } : {}) }) as Promise<WaitResult>,
    nextWaitKey: () => `#${++waitCount}`,
    nextTriggerKey: () => `trigger#${++triggerCount}`,
    registerCompensation(fn, name) {
      compensations.push({ fn, name });
    },
    handle(message) {
      if (message.type !== "reply" && message.type !== "wait-result") return false;
      const waiter = pending.get(message.callId);
      if (!waiter) return true;
      pending.delete(message.callId);
      if (message.type === "wait-result") waiter.resolve(message.result);
      else if (message.ok) waiter.resolve(message.result);
      else waiter.reject(new StasisApiError(400, message.error?.name ?? "ERROR", message.error?.message ?? "the runner refused the call"));
      return true;
    },
  };
}
