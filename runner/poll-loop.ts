import type { Logger } from "pino";
import type { PollResponse } from "../schemas/index.ts";
import { createClaimKeys } from "./claim-keys.ts";
import type { ServerClient } from "./server-client.ts";
import type { Slots } from "./slots.ts";

const LONG_POLL_MS = 10_000;
const SHORT_POLL_MS = 1_000;

export interface PollLoopOptions {
  server: ServerClient;
  runnerId: () => string;
  slots: Slots;
  /** What a poll brought (claims, continues, stops, checkpoints to delete). */
  handle(response: PollResponse): void;
  /** A poll failed: its answer may be lost (see runner.ts). */
  onPollFailed(): void;
  /** Aborted when the runner closes. */
  signal: AbortSignal;
  log: Logger;
}

/**
 * Long-polls the server for runs and wake-ups with the slots free, and claims a slot freed meanwhile
 * with a quick poll instead of idling until the long poll ends.
 */
export function createPollLoop(o: PollLoopOptions) {
  let polling = false;
  let loop: Promise<void> = Promise.resolve();
  /** The poll in flight: a drain cuts it, or it could claim (even the runs the drain gives back) for a runner that is leaving. */
  let inFlight: AbortController | null = null;
  let quickPolling = false;
  let quickPollAgain = false;
  const claimKeys = createClaimKeys();

  async function poll(freeSlots: number, waitMs: number, signal: AbortSignal): Promise<PollResponse> {
    const keys = claimKeys.forPoll();
    try {
      const response = await o.server.poll({ runnerId: o.runnerId(), freeSlots, waitMs, ...keys }, signal);
      claimKeys.answered(keys);
      return response;
    } catch (error) {
      claimKeys.lost(keys);
      throw error;
    }
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (polling) {
      const thisPoll = new AbortController();
      inFlight = thisPoll;
      try {
        const freeSlots = o.slots.free();
        o.slots.offer(freeSlots);
        // A long poll offers the slots free when it starts. A slot freed meanwhile gets one quick poll, but a run
        // that becomes due after that (a frozen wait ending) could only be claimed when the long poll ends: with
        // 10 s polls, frozen waits ended up to 10 s late (bench/wait-latency). So poll long only when every slot
        // is on offer, else briefly.
        const waitMs = freeSlots >= o.slots.capacity ? LONG_POLL_MS : SHORT_POLL_MS;
        const response = await poll(freeSlots, waitMs, AbortSignal.any([o.signal, thisPoll.signal]));
        o.slots.offerEnded();
        failures = 0;
        o.handle(response);
      } catch (error) {
        o.slots.offerEnded();
        if (!polling) return;
        if (thisPoll.signal.aborted) continue; // drain began: poll again, claiming nothing
        failures += 1;
        const delay = Math.min(5000, 100 * 2 ** failures);
        o.log.warn({ err: (error as Error).message, retryInMs: delay }, "poll failed");
        o.onPollFailed();
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  return {
    start(): void {
      polling = true;
      loop = run();
    },
    /** Cuts the poll in flight (a drain began); the loop polls again with what is free now. */
    cut(): void {
      inFlight?.abort();
    },
    async stop(): Promise<void> {
      polling = false;
      await loop.catch(() => {});
    },
    /**
     * A slot freed while the long poll waits with the slots that were free when it started: claim for
     * the new ones at once with a poll that does not wait, instead of idling until the long poll ends.
     */
    async claimFreedSlots(): Promise<void> {
      if (!polling || quickPolling) {
        quickPollAgain = polling;
        return;
      }
      quickPolling = true;
      try {
        do {
          quickPollAgain = false;
          const freeSlots = o.slots.free();
          if (freeSlots === 0) break;
          o.handle(await poll(freeSlots, 0, o.signal));
        } while (quickPollAgain && polling);
      } catch (error) {
        if (polling) o.log.warn({ err: (error as Error).message }, "claim after a freed slot failed; the long poll will pick runs up");
        o.onPollFailed();
      } finally {
        quickPolling = false;
      }
    },
  };
}

export type PollLoop = ReturnType<typeof createPollLoop>;
