import type { WaitResult } from "../../schemas/index.ts";
import type { PendingWait, Session } from "./session.ts";

/**
 * The waitpoint this process is blocked on completed while the process is alive here. During a
 * checkpoint the result is held back: handing it over mid-dump would freeze a run that already moved on.
 */
export function continueWait(session: Session, waitpointId: string, result: WaitResult): void {
  const { wait } = session;
  if (!wait.pending || wait.pending.waitpointId !== waitpointId) return;
  if (!session.state.is("running")) {
    wait.held = result;
    wait.arrived?.();
    return;
  }
  const { callId } = wait.pending;
  wait.pending = null;
  session.channel?.send({ type: "wait-result", callId, result });
}

/**
 * The result of `wait`, asked of the server again (the same keyed wait gives back its waitpoint and
 * result): the continue the server handed out in a poll answer may have been lost with that answer
 * (the server killed mid-reply), and the server moved the run to EXECUTING already. null: still
 * pending (its continue will come), or the wait has no key to ask by.
 */
export async function askWaitResult(session: Session, wait: PendingWait): Promise<WaitResult | null> {
  if (!wait.key) return null;
  const { result } = await session.report("ask for a wait's result", () => session.deps.server.createWait(session.runId, { leaseId: session.leaseId, spec: wait.spec, key: wait.key }));
  return result;
}

/** After a poll whose answer may be lost: an in-process wait whose continue was in it gets its result anyway. */
export async function recheckWait(session: Session): Promise<void> {
  const { wait } = session;
  const pending = wait.pending;
  // One ask at a time: polls fail again and again while the server is down, and the ask retries until it is back.
  if (!pending || !session.state.is("running") || wait.rechecking) return;
  wait.rechecking = true;
  try {
    const result = await askWaitResult(session, pending).catch(() => null);
    if (result) continueWait(session, pending.waitpointId, result);
  } finally {
    wait.rechecking = false;
  }
}

/** The result held back during a checkpoint, once there is one. */
export function nextHeldResult(session: Session): Promise<WaitResult> {
  const { wait } = session;
  if (wait.held) return Promise.resolve(wait.held);
  return new Promise((resolve) => (wait.arrived = () => resolve(wait.held!)));
}

/** Takes the held result: the wait is over. */
export function takeHeld(session: Session): WaitResult {
  const { wait } = session;
  const result = wait.held!;
  wait.held = null;
  wait.arrived = null;
  wait.pending = null;
  return result;
}

/** Hands a result held during a checkpoint that did not happen to the process, which goes on here. */
export function releaseHeld(session: Session): void {
  const { pending } = session.wait;
  if (session.wait.held && pending) session.channel?.send({ type: "wait-result", callId: pending.callId, result: takeHeld(session) });
}
