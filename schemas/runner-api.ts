import { z } from "zod";
import { Json, SerializedError } from "./common.ts";
import { LogLevel, TriggerOptions, SendEventRequest } from "./api.ts";
import { BuildManifest } from "./manifest.ts";
import { TriggerChildrenRequest, WaitResult, WaitSpec } from "./waitpoint.ts";
import { GetTokenRequest } from "./connections.ts";

/** A sha256 digest as 64 lower-case hex characters. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "a sha256 digest: 64 lower-case hex characters");
/** A checkpoint's AES-256 key: 32 bytes as base64. */
export const CheckpointKey = z
  .string()
  .regex(/^[A-Za-z0-9+/]{43}=$/, "a checkpoint key: 32 bytes as base64 (44 characters)");

/** The id the runners keeping their dumps under one work dir share (runner/checkpoint-site.ts): 16 random bytes as hex. */
export const CheckpointSite = z.string().regex(/^[0-9a-f]{32}$/, "a checkpoint site: 32 lower-case hex characters");

/** Runner ↔ server. Every call carries the runner token; per-run calls carry the lease id (a fencing token). */
export const RegisterRunnerRequest = z
  .object({
    name: z.string().min(1).max(200),
    capacity: z.number().int().min(1).max(1000),
    checkpoints: z.boolean(),
    workload: z.enum(["process", "runc", "container"]).default("process"),
    /** The runners keeping their dumps under one work dir share it (runner/checkpoint-site.ts): each can restore a dump another kept. */
    checkpointSite: CheckpointSite.optional(),
  })
  .strict();
export const RegisterRunnerResponse = z.object({
  runnerId: z.string(),
  heartbeatIntervalMs: z.number().int(),
  leaseMs: z.number().int(),
  /** The server's STASIS_SUSPEND_THRESHOLD_MS when it was given one: waits shorter than this stay in-process. */
  suspendThresholdMs: z.number().int().optional(),
});

const ClaimKey = z.string().regex(/^[a-z0-9]{8,40}$/, "a claim key is 8 to 40 lowercase letters and digits");

export const PollRequest = z
  .object({
    runnerId: z.string(),
    freeSlots: z.number().int().min(0),
    waitMs: z.number().int().min(0).max(30_000).default(10_000),
    /** New per HTTP try: the runs this poll claims carry it in their lease ids. */
    claimKey: ClaimKey.optional(),
    /** Claim keys of earlier polls whose answer never reached the runner: their runs are given back first. */
    unanswered: z.array(ClaimKey).max(20).optional(),
  })
  .strict();

export const ClaimedRun = z.object({
  runId: z.string(),
  leaseId: z.string(),
  attempt: z.number().int(),
  taskId: z.string(),
  payload: Json,
  environment: z.string(),
  /**
   * A number unique to the run's environment on this server, never reused: the runner runs the
   * environment's task processes under uid `task uid base + number` (one uid per environment).
   */
  environmentNumber: z.number().int().positive(),
  project: z.string(),
  deployment: z.object({ id: z.string(), version: z.string(), imageRef: z.string(), imageDigest: z.string(), manifest: BuildManifest }),
  /** Server-clock deadline for this execution (maxDuration), ISO, or null. */
  deadline: z.string().nullable(),
  tags: z.array(z.string()),
  /**
   * Present when the run resumes from a checkpoint: with the sha256 the server recorded when it was
   * reported and its key (unwrapped by the server for this claim only). The runner refuses a
   * checkpoint whose bytes hash to anything else. Both null for a checkpoint taken before they were recorded.
   */
  resume: z
    .object({
      checkpointLocation: z.string(),
      /** The wait the checkpoint was taken in, and its result; both null for a checkpoint of a running run (a drain's, or a safety checkpoint). */
      waitpointId: z.string().nullable(),
      result: WaitResult.nullable(),
      sha256: Sha256Hex.nullable().default(null),
      key: CheckpointKey.nullable().default(null),
    })
    .nullable(),
  /**
   * The environment's variables (the `preview` set under a preview's own), decrypted by the server
   * for this attempt. The runner holds them in memory only and gives them to this run's process.
   */
  env: z.record(z.string(), z.string()).default({}),
});
export type ClaimedRun = z.infer<typeof ClaimedRun>;

/** A waitpoint of a run whose process is still alive on this runner has completed. */
export const ContinueRun = z.object({ runId: z.string(), leaseId: z.string(), waitpointId: z.string(), result: WaitResult });
export type ContinueRun = z.infer<typeof ContinueRun>;

export const PollResponse = z.object({
  runs: z.array(ClaimedRun),
  continues: z.array(ContinueRun),
  /** Runs this runner holds that were canceled (or timed out) and must be stopped. */
  stops: z.array(z.object({ runId: z.string(), reason: z.string() })),
  /** Checkpoint locations of canceled suspended runs: the runner deletes them from the checkpoint store. */
  deleteCheckpoints: z.array(z.string()).optional(),
});
export type PollResponse = z.infer<typeof PollResponse>;

export const HeartbeatRequest = z.object({ runnerId: z.string(), leases: z.array(z.object({ runId: z.string(), leaseId: z.string() })) }).strict();
export const HeartbeatResponse = z.object({ lost: z.array(z.string()), leaseMs: z.number().int() });

export const LeaseBody = z.object({ leaseId: z.string() });

export const CompleteAttemptRequest = z
  .object({
    leaseId: z.string(),
    result: z.discriminatedUnion("ok", [
      z.object({ ok: z.literal(true), output: Json }),
      z.object({ ok: z.literal(false), error: SerializedError, /** e.g. OOM, crash: not the task's own throw */ crashed: z.boolean().optional() }),
    ]),
  })
  .strict();
export type CompleteAttemptRequest = z.infer<typeof CompleteAttemptRequest>;
export const CompleteAttemptResponse = z.object({ status: z.string(), retryAt: z.string().nullable() });

/** Items one batched completion may carry. */
export const MAX_COMPLETIONS_PER_CALL = 100;
/** Several attempts' ends in one call (and one transaction): what a runner whose runs end together sends. */
export const CompleteAttemptsRequest = z
  .object({ items: z.array(CompleteAttemptRequest.safeExtend({ runId: z.string().min(1) })).min(1).max(MAX_COMPLETIONS_PER_CALL) })
  .strict();
export type CompleteAttemptsRequest = z.infer<typeof CompleteAttemptsRequest>;
/** Per item, in order: the answer the single route gives, or the error it would have answered with. */
export const CompleteAttemptsResponse = z.object({
  results: z.array(
    z.union([
      z.object({ runId: z.string(), ok: z.literal(true), status: z.string(), retryAt: z.string().nullable() }),
      z.object({ runId: z.string(), ok: z.literal(false), error: z.object({ status: z.number().int(), code: z.string(), message: z.string() }) }),
    ]),
  ),
});
export type CompleteAttemptsResponse = z.infer<typeof CompleteAttemptsResponse>;

export const AppendLogsRequest = z
  .object({
    leaseId: z.string(),
    // An ISO date (the runner and the SDK send toISOString()); anything else made an Invalid Date and a 500.
    lines: z.array(z.object({ ts: z.iso.datetime({ offset: true }), level: LogLevel, message: z.string().max(64 * 1024), data: z.record(z.string(), z.unknown()).optional() })).max(1000),
  })
  .strict();

/**
 * Which wait of the run this is: `#<n>` for its n-th wait (the SDK counts them per attempt; a process
 * restored from a checkpoint continues its count), or `key:<text>` for a key the task gave. A run
 * that reaches a key again (a re-executed attempt) gets the same waitpoint, and its result if it has one.
 */
export const WaitKey = z.string().min(1).max(256);
export const CreateWaitRequest = z.object({ leaseId: z.string(), spec: WaitSpec, key: WaitKey.optional() }).strict();
/** If the waitpoint completed already (zero duration, or reached again after it completed), `result` is set and the run keeps EXECUTING. */
export const CreateWaitResponse = z.object({ waitpointId: z.string(), result: WaitResult.nullable() });

export const CreateRequestTokenRequest = z.object({ leaseId: z.string(), timeoutMs: z.number().int().positive().optional(), key: WaitKey.optional() }).strict();
export const CreateRequestTokenResponse = z.object({ token: z.string(), url: z.string() });

export const SuspendRequest = z
  .object({
    leaseId: z.string(),
    waitpointId: z.string(),
    /** `sha256`: of the bytes stored; `key`: the checkpoint's own key, which the server keeps wrapped by the project's data key. */
    checkpoint: z.object({ location: z.string(), sizeBytes: z.number().int().nonnegative(), sha256: Sha256Hex, key: CheckpointKey }).strict(),
    /** The runner keeps this dump on its own disk (`--local-checkpoints`): the server holds the resume for it for a moment. */
    keptLocally: z.boolean().optional(),
  })
  .strict();
export const SuspendResponse = z.object({ status: z.enum(["SUSPENDED", "QUEUED"]) });

/** A stored checkpoint as the runner reports it: where, how big, the sha256 of the stored bytes and its own key. */
export const ReportedCheckpoint = z.object({ location: z.string(), sizeBytes: z.number().int().nonnegative(), sha256: Sha256Hex, key: CheckpointKey }).strict();

/**
 * A draining runner checkpointed a running run (EXECUTING): the server queues it to resume from that
 * checkpoint on another runner, in the same attempt. Answered QUEUED (also to a repeat).
 */
export const HandOverRequest = z.object({ leaseId: z.string(), checkpoint: ReportedCheckpoint }).strict();
export const HandOverResponse = z.object({ status: z.literal("QUEUED") });

/**
 * A safety checkpoint of a running run (taken with the process left running): the run's checkpoint
 * from now on, resumed from if the runner dies. `previous`: the checkpoint it replaces, which the
 * runner deletes.
 */
export const SafetyCheckpointRequest = z.object({ leaseId: z.string(), checkpoint: ReportedCheckpoint }).strict();
export const SafetyCheckpointResponse = z.object({ previous: z.string().nullable() });

export const RunnerTriggerRequest = TriggerChildrenRequest.extend({ leaseId: z.string() }).strict();
export const RunnerTriggerResponse = z.object({ runIds: z.array(z.string()) });
export const RunnerSendEventRequest = SendEventRequest.extend({ leaseId: z.string() }).strict();
export const RunnerConnectionTokenRequest = GetTokenRequest.extend({ leaseId: z.string() }).strict();

export const ReleaseRequest = z.object({ runnerId: z.string(), leases: z.array(z.object({ runId: z.string(), leaseId: z.string() })) }).strict();
export const ReleaseResponse = z.object({ released: z.array(z.string()) });
export { TriggerOptions };
