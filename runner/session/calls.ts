import { WaitSpec, type TaskCall, type WaitResult } from "../../schemas/index.ts";
import { isLeaseGone } from "../retry-call.ts";
import { stop } from "./finish.ts";
import type { PendingWait, Session } from "./session.ts";
import { suspend } from "./suspend.ts";
import { createTimeline } from "./timeline.ts";

/**
 * Answers one call of the task (wait, request token, trigger, event): asks the server, replies on fd 3.
 * A call that comes while the process is being checkpointed is held, not asked: its reply could not
 * reach the process (it is frozen, maybe for good here), so it is asked once the process runs again —
 * here, or on the runner that restores the checkpoint, which carries it (checkpoint.ts).
 */
export async function answerCall(session: Session, callId: number, call: TaskCall): Promise<void> {
  if (!session.state.is("running")) return void session.calls.held.push({ callId, call });
  const { server } = session.deps;
  const { runId, leaseId } = session;
  session.calls.inFlight += 1;
  let counted = true;
  const settled = () => {
    if (counted) session.calls.inFlight -= 1;
    counted = false;
  };
  try {
    switch (call.method) {
      case "wait":
        return await beginWait(session, callId, WaitSpec.parse(call.spec), call.key, settled);
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
      case "getConnectionToken": {
        const token = await session.report("get a connection token", () => server.connectionToken(runId, { leaseId, integration: call.integration, externalId: call.externalId }));
        // The task may print what it got: its log lines leave this runner with the token redacted.
        session.shipper.addSecret(`connection:${call.integration}`, token.accessToken);
        return reply(session, callId, token);
      }
    }
  } catch (thrown) {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    if (isLeaseGone(error)) return void stop(session, "lease lost", "lost");
    session.channel?.send({ type: "reply", callId, ok: false, error: { name: error.name, message: error.message } });
  } finally {
    settled();
  }
}

/** The calls held during a checkpoint, asked now that the process runs (again). */
export function answerHeldCalls(session: Session): void {
  const held = session.calls.held.splice(0);
  for (const { callId, call } of held) void answerCall(session, callId, call);
}

function reply(session: Session, callId: number, result: unknown): void {
  session.channel?.send({ type: "reply", callId, ok: true, result });
}

async function beginWait(session: Session, callId: number, spec: WaitSpec, key: string | undefined, asked: () => void): Promise<void> {
  session.timeline = createTimeline();
  const { runtime, server } = session.deps;
  const suspending = session.proc !== null && shouldSuspend(session, spec);
  const creating = session.report("create a wait", () => server.createWait(session.runId, { leaseId: session.leaseId, spec, key }));
  if (suspending && runtime.checkpoints.verdicts) return await suspendBesideAnswer(session, { callId, spec, key }, creating, asked);
  const { waitpointId, result } = await creating;
  if (result) return void session.channel?.send({ type: "wait-result", callId, result });
  waitIsPending(session, { callId, waitpointId, spec, key }, asked);
  if (session.state.over) return;
  if (suspending) await suspend(session);
}

/**
 * A long wait whose dump begins with the server's call instead of after its answer (a dump takes
 * ~100 ms, the call 10–20): CRIU holds the dumped process frozen until the answer is in. A pending
 * wait lets the dump end the process, as any suspend; a result already there, or a failed call, lets
 * it go on where it was, and it gets them as if no dump had begun.
 */
async function suspendBesideAnswer(session: Session, wait: Omit<PendingWait, "waitpointId">, creating: Promise<{ waitpointId: string; result: WaitResult | null }>, asked: () => void): Promise<void> {
  let decide!: (go: boolean) => void;
  const verdict = new Promise<boolean>((resolve) => (decide = resolve));
  const suspending = suspend(session, verdict);
  let created: Awaited<typeof creating>;
  try {
    created = await creating;
  } catch (error) {
    decide(false);
    await suspending;
    throw error;
  }
  if (created.result) {
    decide(false);
    await suspending;
    return void session.channel?.send({ type: "wait-result", callId: wait.callId, result: created.result });
  }
  waitIsPending(session, { ...wait, waitpointId: created.waitpointId }, asked);
  decide(!session.state.over);
  await suspending;
}

function waitIsPending(session: Session, wait: PendingWait, asked: () => void): void {
  session.timeline.mark("waitCreated");
  session.wait.pending = wait;
  asked(); // the call is answered for a checkpoint's purposes: the wait is the session's now
}

function shouldSuspend(session: Session, spec: WaitSpec): boolean {
  const { deps } = session;
  if (!deps.checkpoints || !deps.runtime.checkpoints.available) return false;
  if (spec.kind === "duration") return spec.ms >= deps.suspendThresholdMs;
  if (spec.kind === "until") return Date.parse(spec.date) - Date.now() >= deps.suspendThresholdMs;
  return true;
}
