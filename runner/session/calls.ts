import { WaitSpec, type TaskCall } from "../../schemas/index.ts";
import { isLeaseGone } from "../retry-call.ts";
import { stop } from "./finish.ts";
import type { Session } from "./session.ts";
import { suspend } from "./suspend.ts";

/** Answers one call of the task (wait, request token, trigger, event): asks the server, replies on fd 3. */
export async function answerCall(session: Session, callId: number, call: TaskCall): Promise<void> {
  const { server } = session.deps;
  const { runId, leaseId } = session;
  try {
    switch (call.method) {
      case "wait":
        return await beginWait(session, callId, WaitSpec.parse(call.spec), call.key);
      case "createRequestToken":
        return reply(session, callId, await session.report("create a request token", () => server.createRequestToken(runId, { leaseId, timeoutMs: call.timeoutMs, key: call.key })));
      case "trigger": {
        // A retried trigger must not start the children twice: each item gets a key unique to this call.
        const items = (call.items as Array<{ options?: Record<string, unknown> }>).map((item, i) => ({
          ...item,
          options: { ...item.options, idempotencyKey: item.options?.idempotencyKey ?? `stasis-call:${leaseId}:${callId}:${i}` },
        }));
        return reply(session, callId, await session.report("trigger runs", () => server.trigger(runId, { leaseId, items: items as never, wait: call.wait })));
      }
      case "sendEvent": {
        // Events are idempotent by id: a retried send is not delivered twice.
        const id = call.id ?? `stasis-call:${leaseId}:${callId}`;
        return reply(session, callId, await session.report("send an event", () => server.sendEvent(runId, { leaseId, event: call.event, payload: call.payload, id })));
      }
    }
  } catch (thrown) {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    if (isLeaseGone(error)) return void stop(session, "lease lost", "lost");
    session.channel?.send({ type: "reply", callId, ok: false, error: { name: error.name, message: error.message } });
  }
}

function reply(session: Session, callId: number, result: unknown): void {
  session.channel?.send({ type: "reply", callId, ok: true, result });
}

async function beginWait(session: Session, callId: number, spec: WaitSpec, key?: string): Promise<void> {
  const { waitpointId, result } = await session.report("create a wait", () => session.deps.server.createWait(session.runId, { leaseId: session.leaseId, spec, key }));
  if (result) return void session.channel?.send({ type: "wait-result", callId, result });
  session.wait.pending = { callId, waitpointId, spec, key };
  if (shouldSuspend(session, spec)) await suspend(session);
}

function shouldSuspend(session: Session, spec: WaitSpec): boolean {
  const { deps } = session;
  if (!deps.checkpoints || !deps.runtime.checkpoints.available) return false;
  if (spec.kind === "duration") return spec.ms >= deps.suspendThresholdMs;
  if (spec.kind === "until") return Date.parse(spec.date) - Date.now() >= deps.suspendThresholdMs;
  return true;
}
