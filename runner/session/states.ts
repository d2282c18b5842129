/**
 * A run session's states on this runner and the moves between them: one table, one way to move
 * (`move`), as the server's run engine does with runs (schemas/status.ts, server/engine/transition.ts).
 *
 * - starting:  a fresh process is being started, or the checkpoint of a resume fetched
 * - running:   the task process is alive here (it may be blocked in an in-process wait)
 * - preparing: `prepare-checkpoint` sent; waiting for the task's `checkpoint-ready`
 * - dumping:   CRIU is dumping the process
 * - storing:   the process is gone (dumped); the checkpoint goes to the store and is reported
 * - restoring: a process is being restored from a dump or a fetched checkpoint
 * - ending:    the end, a stop or a hand-over is being reported; nothing else happens to the run here
 * - ended:     `done` has settled
 */
export type SessionState = "starting" | "running" | "preparing" | "dumping" | "storing" | "restoring" | "ending" | "ended";

export const SESSION_TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  starting: ["running", "restoring", "ending"],
  running: ["preparing", "ending"],
  // back to running: the task was not ready in time, or its wait ended meanwhile
  preparing: ["running", "dumping", "ending"],
  // running: CRIU could not dump (the process goes on, or was left running on purpose); restoring: the wait ended during the dump
  dumping: ["running", "storing", "restoring", "ending"],
  // restoring: the wait ended while storing, or the store refused the checkpoint
  storing: ["restoring", "ending"],
  restoring: ["running", "ending"],
  ending: ["ended"],
  ended: [],
};

/** Whether a session in this state holds one of the runner's slots (a process here, or one on its way). */
export const HOLDS_SLOT: Readonly<Record<SessionState, boolean>> = {
  starting: true,
  running: true,
  preparing: true,
  dumping: true,
  storing: false,
  restoring: true,
  ending: false,
  ended: false,
};

export class SessionTransitionError extends Error {
  readonly code = "SESSION_INVALID_TRANSITION";
  constructor(from: SessionState, to: SessionState) {
    super(`a run session cannot go from ${from} to ${to}`);
    this.name = "SessionTransitionError";
  }
}

export function canMove(from: SessionState, to: SessionState): boolean {
  return SESSION_TRANSITIONS[from].includes(to);
}

/** A session's current state. `move` is the one way to change it; `tryMove` is for moves a race may have made moot. */
export function createSessionState(onMove?: (from: SessionState, to: SessionState) => void) {
  let current: SessionState = "starting";
  return {
    get current(): SessionState {
      return current;
    },
    get holdsSlot(): boolean {
      return HOLDS_SLOT[current];
    },
    /** Ending or ended: a report of the run's end (or a stop) has begun. */
    get over(): boolean {
      return current === "ending" || current === "ended";
    },
    is(...states: SessionState[]): boolean {
      return states.includes(current);
    },
    /** Moves, or throws when the table does not allow it. */
    move(to: SessionState): void {
      if (!canMove(current, to)) throw new SessionTransitionError(current, to);
      const from = current;
      current = to;
      onMove?.(from, to);
    },
    /** Moves when the table allows it; false (and no change) otherwise. */
    tryMove(to: SessionState): boolean {
      if (!canMove(current, to)) return false;
      const from = current;
      current = to;
      onMove?.(from, to);
      return true;
    },
  };
}

export type SessionStateMachine = ReturnType<typeof createSessionState>;
