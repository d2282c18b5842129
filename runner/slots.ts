/**
 * The runner's slots: how many runs may hold a process here (`capacity`), how many do (`busy`, asked
 * of the sessions: a suspended run holds none, a run being restored does), how many the long poll in
 * flight has offered the server already, and whether the runner is draining (then none are free).
 */
export function createSlots(capacity: number, busy: () => number) {
  let offeredByLongPoll = 0;
  let draining = false;
  return {
    capacity,
    get draining(): boolean {
      return draining;
    },
    busy,
    /** Slots a new poll may offer: none while draining, and none the long poll in flight offered. */
    free(): number {
      if (draining) return 0;
      return Math.max(0, capacity - busy() - offeredByLongPoll);
    },
    /** A long poll offers `n` slots until it ends. */
    offer(n: number): void {
      offeredByLongPoll = n;
    },
    /** The long poll ended (answered or failed): what it offered is free again or taken. */
    offerEnded(): void {
      offeredByLongPoll = 0;
    },
    /** Offer no slot from now on. */
    drain(): void {
      draining = true;
    },
  };
}

export type Slots = ReturnType<typeof createSlots>;
