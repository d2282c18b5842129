import type { ClaimedRun, WaitResult } from "../schemas/index.ts";
import { answerHeldCalls } from "./session/calls.ts";
import { handOver } from "./session/drain.ts";
import { stop } from "./session/finish.ts";
import { createSession, type RunSessionDeps, type SessionOutcome } from "./session/session.ts";
import { startSafetyCheckpoints } from "./session/safety.ts";
import { start } from "./session/start.ts";
import { continueWait, recheckWait } from "./session/waits.ts";

export type { RunSessionDeps, SessionOutcome } from "./session/session.ts";

/**
 * One claimed run on this runner: starts or restores its process, answers its calls, ships its logs,
 * suspends it with a checkpoint on long waits, and reports how it ended. `done` settles when the run
 * no longer holds a slot here.
 *
 * The steps live in `session/`, one module each (start, calls, waits, suspend, restore, finish, drain, safety), and
 * move the session through the states of `session/states.ts`, the one table of what may follow what.
 */
export function startRunSession(claim: ClaimedRun, deps: RunSessionDeps) {
  const session = createSession(claim, deps);
  session.afterRunning = () => answerHeldCalls(session);
  start(session);
  startSafetyCheckpoints(session);
  return {
    runId: session.runId,
    leaseId: session.leaseId,
    done: session.done as Promise<SessionOutcome>,
    continueWait: (waitpointId: string, result: WaitResult) => continueWait(session, waitpointId, result),
    recheckWait: () => recheckWait(session),
    stop: (reason: string, outcome?: SessionOutcome) => stop(session, reason, outcome),
    /** Drain: checkpoint the run and hand it over (see session/drain.ts). False: it is still here. */
    handOver: (deadline: number) => handOver(session, deadline),
    get holdsSlot() {
      return session.state.holdsSlot;
    },
  };
}

export type RunSession = ReturnType<typeof startRunSession>;
