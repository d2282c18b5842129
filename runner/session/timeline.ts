/**
 * Named instants of one suspend or resume on this runner (ms since it began, runner clock), logged
 * with the step's last line ("run suspended", "run restored"): where the time of a suspend or a
 * resume goes, step by step (bench/suspend-resume prints them).
 */
export interface Timeline {
  mark(name: string): void;
  readonly marks: Record<string, number>;
}

export function createTimeline(startedAt = performance.now()): Timeline {
  const marks: Record<string, number> = {};
  return {
    mark(name) {
      marks[name] = Math.round(performance.now() - startedAt);
    },
    marks,
  };
}
