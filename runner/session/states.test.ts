import { describe, expect, it } from "vitest";
import { canMove, createSessionState, HOLDS_SLOT, SESSION_TRANSITIONS, SessionTransitionError, type SessionState } from "./states.ts";

describe("run session states", () => {
  it("every state named in the table is a state, and ended is the only one without a way out", () => {
    const states = Object.keys(SESSION_TRANSITIONS) as SessionState[];
    for (const to of states.flatMap((s) => SESSION_TRANSITIONS[s])) expect(states).toContain(to);
    expect(states.filter((s) => SESSION_TRANSITIONS[s].length === 0)).toEqual(["ended"]);
    expect(Object.keys(HOLDS_SLOT).sort()).toEqual([...states].sort());
  });

  it("a suspend frees the slot while storing and takes it again when restored", () => {
    const state = createSessionState();
    const path: SessionState[] = ["running", "preparing", "dumping", "storing", "restoring", "running"];
    const slots = path.map((to) => (state.move(to), state.holdsSlot));
    expect(slots).toEqual([true, true, true, false, true, true]);
  });

  it("refuses moves the table does not have; tryMove leaves the state as it was", () => {
    const state = createSessionState();
    expect(() => state.move("storing")).toThrow(SessionTransitionError);
    state.move("running");
    expect(state.tryMove("ending")).toBe(true);
    expect(state.over).toBe(true);
    expect(state.tryMove("ending")).toBe(false);
    expect(state.tryMove("running")).toBe(false);
    expect(state.current).toBe("ending");
    expect(canMove("ending", "ended")).toBe(true);
  });
});
