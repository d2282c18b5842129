// App code: start a purchase, then complete its checkout with an event.
// Run with `npx tsx src/buy-ticket.ts` while `stasis dev` runs: it uses STASIS_API_URL/STASIS_API_KEY,
// or else the running `stasis dev` of this project (.stasis/dev.json).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { configure, events, runs } from "stasis/sdk";
import { purchaseTicket } from "../trigger/purchase-ticket.ts";

const devState = join(import.meta.dirname, "..", ".stasis", "dev.json");
if (!process.env.STASIS_API_KEY && existsSync(devState)) {
  const { apiUrl, apiKey } = JSON.parse(readFileSync(devState, "utf8")) as { apiUrl: string; apiKey: string };
  configure({ apiUrl, apiKey });
}

const handle = await purchaseTicket.trigger({ showId: "dune-2026-11-28-2000", seats: ["F7", "F8"], email: "ada@example.com" });
console.log(`purchase started: ${handle.id}`);

// The run reserves seats, then freezes waiting for checkout. Find its reservation in the logs.
let reservationId: string | undefined;
for (let after = 0; !reservationId; ) {
  const page = await runs.logs(handle.id, { after, waitMs: 5000 });
  after = page.next;
  reservationId = page.data.map((line) => line.data?.reservationId).find((id): id is string => typeof id === "string");
}
console.log(`seats reserved (${reservationId}); the run now waits for the checkout event`);

// Waiting costs nothing: the runner freezes the run's process with CRIU and frees its slot.
const frozenBy = Date.now() + 30_000;
let status = (await runs.retrieve(handle.id)).status;
while (status !== "SUSPENDED" && Date.now() < frozenBy) {
  await new Promise((resolve) => setTimeout(resolve, 200));
  status = (await runs.retrieve(handle.id)).status;
}
if (status === "SUSPENDED") {
  console.log(`frozen — no process is running for ${handle.id}; it resumes, on any runner, when the checkout event arrives`);
  await new Promise((resolve) => setTimeout(resolve, 3000)); // a moment to look: ps shows no task process
} else {
  console.log(`still ${status} after 30 s (checkpoints are off or CRIU is missing: the process stays alive while it waits)`);
}
console.log("checking out: sending the checkout event");
await events.trigger({ event: "checkout", payload: { reservationId, cardToken: "tok_visa" } });

const run = await runs.poll(handle.id);
console.log(`${run.status}:`, run.output ?? run.error);
