// Runs the stand-in booking/payment/email services and writes their URL into .env for `stasis dev`.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startStandInServices } from "./stand-in.ts";

const services = await startStandInServices(Number(process.env.PORT ?? 0));
writeFileSync(join(import.meta.dirname, "..", ".env"), `MOVIE_SERVICES_URL=${services.url}\n`);
process.stderr.write(`movie-tickets stand-in services on ${services.url}\n`);
const stop = () => void services.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
