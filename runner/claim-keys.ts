import { randomBytes } from "node:crypto";

/** The most unanswered polls remembered; runs of older ones come back when their lease runs out. */
const MAX_UNANSWERED = 20;

export interface PollKeys {
  claimKey: string;
  unanswered?: string[];
}

/**
 * Each poll carries a fresh claim key, which the server puts in the lease id of every run it claims
 * for that poll. A poll that fails may have claimed runs whose answer never arrived: its key goes on
 * the next poll, and the server queues those runs again at once, instead of when their lease expires.
 */
export function createClaimKeys() {
  let unanswered: string[] = [];
  return {
    forPoll(): PollKeys {
      const claimKey = randomBytes(10).toString("hex");
      return unanswered.length > 0 ? { claimKey, unanswered: [...unanswered] } : { claimKey };
    },
    /** The server read this poll: the keys it carried are dealt with. */
    answered(keys: PollKeys): void {
      if (keys.unanswered) unanswered = unanswered.filter((k) => !keys.unanswered!.includes(k));
    },
    /** No answer was read for this poll. */
    lost(keys: PollKeys): void {
      unanswered = [...unanswered, keys.claimKey].slice(-MAX_UNANSWERED);
    },
  };
}
