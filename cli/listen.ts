import type { FastifyInstance } from "fastify";
import { CliError, ExitCode } from "./output.ts";
import { portTakenMessage } from "./port-owner.ts";

/** `app.listen`, with a taken port reported as a usage error that names its holder. */
export async function listenOn(app: FastifyInstance, host: string, port: number): Promise<void> {
  try {
    await app.listen({ host, port });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") throw new CliError(portTakenMessage(host, port), ExitCode.USAGE);
    throw error;
  }
}
