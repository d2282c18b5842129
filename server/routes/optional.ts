import type { FastifyInstance } from "fastify";
import type { Engine } from "../engine/context.ts";

/** Routes of the later steps (waits, events, request tokens) register here. */
export async function registerOptionalRoutes(_app: FastifyInstance, _engine: Engine): Promise<void> {}
