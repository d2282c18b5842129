export interface BuildSlots {
  /**
   * Runs `job` for `key` (one environment of one repository) once a slot is free. A call with a
   * higher `order` (received later) for the same key aborts the older job (reason: a
   * SupersededError); a call older than the current one is refused the same way, so webhooks that
   * overtake each other inside the App still leave the newest push deployed. A job past the time
   * limit is aborted with a TimeoutError. The job must honour the signal.
   */
  run<T>(key: string, order: number, description: string, job: (signal: AbortSignal) => Promise<T>): Promise<T>;
  /** Aborts the job running or waiting for `key` (a closed pull request). */
  cancel(key: string, reason: string): void;
  readonly running: number;
}

export class SupersededError extends Error {
  override name = "SupersededError";
}

export class BuildTimeoutError extends Error {
  override name = "TimeoutError";
}

export function createBuildSlots(options: { concurrency: number; timeoutMs: number }): BuildSlots {
  const current = new Map<string, { order: number; description: string; controller: AbortController }>();
  // The newest order seen per key, kept after its job ends so a late older call is still refused.
  const newest = new Map<string, { order: number; description: string }>();
  const waiting: Array<() => void> = [];
  let running = 0;

  const acquire = (signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (running < options.concurrency) {
        running++;
        return resolve();
      }
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        running++;
        resolve();
      };
      const onAbort = () => {
        waiting.splice(waiting.indexOf(wake), 1);
        reject(signal.reason);
      };
      waiting.push(wake);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  const release = () => {
    running--;
    waiting.shift()?.();
  };

  return {
    get running() {
      return running;
    },
    async run(key, order, description, job) {
      const seen = newest.get(key);
      if (seen && seen.order > order) throw new SupersededError(`superseded by ${seen.description}`);
      newest.set(key, { order, description });
      current.get(key)?.controller.abort(new SupersededError(`superseded by ${description}`));
      const controller = new AbortController();
      const entry = { order, description, controller };
      current.set(key, entry);
      try {
        await acquire(controller.signal);
        if (controller.signal.aborted) {
          release();
          throw controller.signal.reason;
        }
        const seconds = Math.round(options.timeoutMs / 1000);
        const timer = setTimeout(() => controller.abort(new BuildTimeoutError(`the build exceeded its time limit of ${seconds} s`)), options.timeoutMs);
        try {
          return await job(controller.signal);
        } finally {
          clearTimeout(timer);
          release();
        }
      } finally {
        if (current.get(key) === entry) current.delete(key);
      }
    },
    cancel(key, reason) {
      current.get(key)?.controller.abort(new SupersededError(reason));
    },
  };
}
